"""Engine overhead: wall time of prunekit vs Torch-Pruning on ResNet-50 and ViT-B/16.

Both models are built here in code (no torchvision / timm needed), with random weights. Each
tool prunes a fresh deepcopy of the same model: 50% of the channels / features of every group,
L2 magnitude importance, local (uniform) scope, the final classifier kept.

* prunekit: ``prunekit.analyze(model, x)`` then ``prunekit.prune(model, x, ratio=0.5, ...)``;
  both are timed, separately and together. Note that ``prune`` re-analyses the model itself and
  also deep-copies it, measures its cost before and after and runs the pruned model once, so
  ``prune`` alone is the end-to-end cost and "analyze + prune" counts the analysis twice.
* Torch-Pruning: ``BasePruner(...)`` (builds the dependency graph) then ``pruner.step()``; for
  the ViT the fused ``qkv`` Linear layers are passed as ``num_heads`` and the attention
  modules' ``num_heads`` / ``head_dim`` are updated after the step, as in TP's
  ``examples/transformers/prune_timm_vit.py``.

Run: ``make bench-engine`` or ``.venv/bin/python benchmarks/engine_overhead.py [--repeats N]``.
The Markdown table goes to stdout and to ``docs/engine_overhead.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
# Import prunekit from this checkout even when the editable install in .venv is stale (one made
# before prunekit/__init__.py existed resolves ``prunekit`` as an empty namespace package).
sys.path.insert(0, str(ROOT))

import prunekit  # noqa: E402
from prunekit.evaluation import count_macs, count_params  # noqa: E402

RATIO = 0.5


# --------------------------------------------------------------------------- ResNet-50
class Bottleneck(nn.Module):
    """torchvision-style bottleneck (stride on the 3x3 conv, "ResNet v1.5")."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50: Bottleneck blocks [3, 4, 6, 3], widths 64..2048, 1000 classes (25.6M params)."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        mods = [Bottleneck(self.inplanes, planes, stride)]
        self.inplanes = planes * Bottleneck.expansion
        mods += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------- ViT-B/16
class Attention(nn.Module):
    """timm-style attention: one fused qkv Linear, heads split by reshape."""

    def __init__(self, dim: int, num_heads: int, fused: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        x = x.transpose(1, 2).reshape(B, N, -1)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, fused: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, fused)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # B, N, C


class ViT(nn.Module):
    """ViT-B/16: 768 dim, 12 heads, 12 blocks, MLP 3072, class token, learned pos-embed."""

    def __init__(
        self,
        img_size: int = 224,
        patch: int = 16,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_hidden: int = 3072,
        num_classes: int = 1000,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        num_patches = (img_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(
            *[Block(dim, num_heads, mlp_hidden, fused) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# --------------------------------------------------------------------------- the two tools
def classifier(model: nn.Module) -> nn.Module:
    out = getattr(model, "fc", None) or getattr(model, "head", None)
    assert isinstance(out, nn.Module)
    return out


def run_prunekit(model: nn.Module, x: Tensor) -> tuple[nn.Module, dict[str, float]]:
    """Total = one ``prune()`` call (it traces, scores, cuts and verifies the cut).

    ``analyze()`` (trace + probe of every group) is timed separately for information and is
    not part of the total: ``prune()`` does its own analysis.
    """
    t0 = time.perf_counter()
    result = prunekit.prune(
        model, x, ratio=RATIO, importance="l2", scope="local", ignore=(classifier(model),)
    )
    t1 = time.perf_counter()
    prunekit.analyze(model, x)
    t2 = time.perf_counter()
    return result.model, {"phase1": t2 - t1, "phase2": t1 - t0, "total": t1 - t0}


def run_torch_pruning(model: nn.Module, x: Tensor) -> tuple[nn.Module, dict[str, float]]:
    import torch_pruning as tp

    pruner_cls = getattr(tp.pruner, "BasePruner", None) or tp.pruner.MetaPruner
    if hasattr(tp.importance, "GroupMagnitudeImportance"):
        imp = tp.importance.GroupMagnitudeImportance(p=2)
    else:
        imp = tp.importance.MagnitudeImportance(p=2)
    attns = [m for m in model.modules() if isinstance(m, Attention)]
    num_heads = {m.qkv: m.num_heads for m in attns}
    t0 = time.perf_counter()
    pruner = pruner_cls(
        model,
        x,
        importance=imp,
        global_pruning=False,
        pruning_ratio=RATIO,
        ignored_layers=[classifier(model)],
        num_heads=num_heads,
        round_to=1,
    )
    t1 = time.perf_counter()
    pruner.step()
    for m in attns:  # as in TP's prune_timm_vit.py: keep the reshape attributes in sync
        m.num_heads = pruner.num_heads[m.qkv]
        m.head_dim = m.qkv.out_features // (3 * m.num_heads)
    t2 = time.perf_counter()
    return model, {"phase1": t1 - t0, "phase2": t2 - t1, "total": t2 - t0}


TOOLS: dict[str, tuple[Callable[[nn.Module, Tensor], Any], str, str]] = {
    "prunekit": (run_prunekit, "analyze (info)", "prune"),
    "Torch-Pruning": (run_torch_pruning, "BasePruner()", "step()"),
}


# --------------------------------------------------------------------------- measurement
@dataclass
class Outcome:
    model: str
    tool: str
    times: dict[str, list[float]] = field(default_factory=dict)
    params: tuple[int, int] = (0, 0)
    macs: tuple[int, int] = (0, 0)
    forward: str = "-"
    error: str | None = None
    trace: str | None = None


def forward_check(model: nn.Module, x: Tensor, want: torch.Size) -> str:
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"fails ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    if out.shape != want:
        return f"wrong shape {tuple(out.shape)}"
    if not torch.isfinite(out).all():
        return "non-finite output"
    return f"ok {tuple(out.shape)}"


def measure(name: str, base: nn.Module, x: Tensor, tool: str, repeats: int) -> Outcome:
    fn = TOOLS[tool][0]
    res = Outcome(name, tool)
    with torch.no_grad():
        want = base(x).shape
    before = (count_params(base), count_macs(base, x))
    pruned: nn.Module | None = None
    for i in range(repeats):
        model = copy.deepcopy(base)
        torch.manual_seed(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pruned, t = fn(model, x)
        except Exception as exc:  # noqa: BLE001 - one tool failing must not stop the run
            res.error = f"{type(exc).__name__}: {exc}"
            res.trace = traceback.format_exc()
            print(f"  {tool} on {name}, repeat {i + 1}: FAILED\n{res.trace}", file=sys.stderr)
            return res
        for k, v in t.items():
            res.times.setdefault(k, []).append(v)
        print(f"  {tool:14} {name:10} repeat {i + 1}/{repeats}: {t['total']:.3f} s", flush=True)
    assert pruned is not None
    try:
        res.params = (before[0], count_params(pruned))
        res.macs = (before[1], count_macs(pruned, x))
    except Exception as exc:  # noqa: BLE001
        res.params = (before[0], count_params(pruned))
        res.macs = (before[1], -1)
        res.forward = f"MAC count failed ({type(exc).__name__})"
    if res.forward == "-":
        res.forward = forward_check(pruned, x, want)
    return res


# --------------------------------------------------------------------------- report
def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _stats(xs: list[float]) -> tuple[float, float, float]:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return statistics.median(xs), statistics.mean(xs), sd


def _m(n: int, unit: float, suffix: str) -> str:
    return "?" if n < 0 else f"{n / unit:.2f}{suffix}"


def render(outcomes: list[Outcome], args: argparse.Namespace, size: int, note: str) -> str:
    import torch_pruning as tp

    tp_version = getattr(tp, "__version__", "?")
    lines = [
        "# Engine overhead: prunekit vs Torch-Pruning",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- torch {torch.__version__}, torch-pruning {tp_version}, prunekit {prunekit.__version__},"
        f" Python {platform.python_version()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.platform()}); torch threads: "
        f"{torch.get_num_threads()}; load average (1 min) at start {args.load_start:.2f}, "
        f"at end {_load():.2f}",
        f"- task: ratio {RATIO}, L2 magnitude, local scope, final classifier ignored; input "
        f"1x3x{size}x{size}; {args.repeats} repeats, each on a fresh deepcopy; "
        f"ViT attention: {'F.scaled_dot_product_attention' if args.attention == 'sdpa' else 'explicit softmax'}",
    ]
    if note:
        lines.append(f"- note: {note}")
    lines += [
        "- prunekit total = one `prune()` call: trace + dependency groups + scores + cut on a "
        "deep copy + a verification forward pass (zeroed == cut). The `analyze` column is a "
        "separate `analyze()` call (trace + trial-cut probe of every group), shown for "
        "information and not part of the total. Torch-Pruning total = `BasePruner(...)` "
        "(graph build) + `step()`, in place on a copy made outside the timing.",
        "",
        "| model | tool | total median (s) | total mean ± std (s) | phase 1 median (s) "
        "| phase 2 median (s) | params before → after | MACs before → after | forward |",
        "|---|---|---:|---:|---|---|---|---|---|",
    ]
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for o in outcomes:
        if o.error is not None:
            err = o.error.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {o.model} | {o.tool} | error | {err[:300]} | | | | | |")
            continue
        med, mean, sd = _stats(o.times["total"])
        p1, p2 = TOOLS[o.tool][1], TOOLS[o.tool][2]
        m1, m2 = statistics.median(o.times["phase1"]), statistics.median(o.times["phase2"])
        medians[(o.model, o.tool)] = {"total": med, "phase2": m2}
        lines.append(
            f"| {o.model} | {o.tool} | {med:.3f} | {mean:.3f} ± {sd:.3f} | {p1} {m1:.3f} "
            f"| {p2} {m2:.3f} | {_m(o.params[0], 1e6, 'M')} → {_m(o.params[1], 1e6, 'M')} "
            f"| {_m(o.macs[0], 1e9, 'G')} → {_m(o.macs[1], 1e9, 'G')} | {o.forward} |"
        )
    lines += ["", "| model | prunekit `prune()` / TP (total medians) | |"]
    lines.append("|---|---:|---:|")
    for name in dict.fromkeys(o.model for o in outcomes):
        pk, tp_ = medians.get((name, "prunekit")), medians.get((name, "Torch-Pruning"))
        if pk and tp_:
            lines.append(
                f"| {name} | {pk['total'] / tp_['total']:.2f}x | {pk['phase2'] / tp_['total']:.2f}x |"
            )
        else:
            lines.append(f"| {name} | n/a (a tool failed) | n/a |")
    failures = [o for o in outcomes if o.trace]
    if failures:
        lines += ["", "## Failures", ""]
        for o in failures:
            lines += [f"### {o.tool} on {o.model}", "", "```text", o.trace.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per tool and model")
    ap.add_argument("--size", type=int, default=224, help="input height/width (default 224)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument(
        "--models", default="resnet50,vit_b_16", help="comma-separated: resnet50, vit_b_16"
    )
    ap.add_argument("--tools", default="prunekit,Torch-Pruning", help="comma-separated tools")
    ap.add_argument(
        "--attention",
        choices=("sdpa", "softmax"),
        default="sdpa",
        help="ViT attention: F.scaled_dot_product_attention or explicit softmax",
    )
    ap.add_argument("--out", default=str(ROOT / "docs" / "engine_overhead.md"))
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    args.load_start = _load()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = args.size
    note = "" if size == 224 else f"input reduced to {size}x{size} (not the standard 224x224)"
    builders: dict[str, Callable[[], nn.Module]] = {
        "resnet50": lambda: ResNet50(),
        "vit_b_16": lambda: ViT(img_size=size, fused=args.attention == "sdpa"),
    }
    x = torch.randn(1, 3, size, size)
    outcomes = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        base = builders[name]().eval()
        print(f"{name}: {count_params(base) / 1e6:.2f}M params", flush=True)
        for tool in args.tools.split(","):
            outcomes.append(measure(name, base, x, tool, args.repeats))

    text = render(outcomes, args, size, note)
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
