"""Layer knowledge lives only in ``prunekit/surgery`` (handlers) and ``prunekit/graph`` (rules).

An AST check over the package source: an ``isinstance``/``issubclass`` call (or a
``type(x) is/==/in ...`` comparison) whose class argument is a torch layer class fails with
``file:line``. A class argument counts as a layer class when it resolves to a subclass of a
``torch.nn`` module class other than the generic containers and wrappers (``nn.Module``,
``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``, ``nn.ParameterList``,
``nn.ParameterDict``, the data-parallel wrappers): ``nn.Conv2d``,
``nn.modules.batchnorm._NormBase``, ``torch.nn.Linear``, names imported from ``torch.nn``,
prunekit classes derived from them (``PrunedMultiheadAttention``), and tuples, unions or
module-level aliases of any of these (``CONVS = (nn.Conv1d, nn.Conv2d)``).

Code outside surgery/ and graph/ asks :func:`prunekit.surgery.get_handler` instead (roles,
input dims, running statistics, refit geometry, inference folding).
"""

from __future__ import annotations

import ast
import importlib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import prunekit
from prunekit.graph import Member
from prunekit.importance import BNScale, is_norm_weight
from prunekit.recovery import BNScaleL1, batchnorm_layers, compensate, recalibrate_bn
from prunekit.surgery import (
    ROLES,
    Handler,
    RefitGeometry,
    RunningStats,
    get_handler,
    register_handler,
    role_of,
)
from prunekit.surgery.refit import linear_geometry

PACKAGE = Path(__file__).resolve().parents[1] / "prunekit"
LAYER_ROOMS = ("surgery", "graph")  # the packages allowed to know layer types

# file (relative to prunekit/) -> why it may still test layer classes, until it is moved
ALLOWED: dict[str, str] = {
    # reference model definitions: a model initialises its own layers (not library machinery)
    "models/resnet.py": "a reference model's weight init knows its own layers",
}

_GENERIC = {
    nn.Module,
    nn.Sequential,
    nn.ModuleList,
    nn.ModuleDict,
    nn.ParameterList,
    nn.ParameterDict,
    nn.DataParallel,
    nn.parallel.DistributedDataParallel,
}


def is_layer_class(obj: object) -> bool:
    """Is ``obj`` a torch layer class (or derived from one), not a generic container?"""
    if not isinstance(obj, type) or not issubclass(obj, nn.Module):
        return False
    return any(
        issubclass(c, nn.Module) and c.__module__.startswith("torch.nn") and c not in _GENERIC
        for c in obj.__mro__
    )


class _Resolver:
    """Resolves the names of one module's source to the objects they denote."""

    def __init__(self, tree: ast.Module, module: str) -> None:
        self.module = module
        self.imports: dict[str, str] = {}  # local name -> "pkg.mod" or "pkg.mod:attr"
        self.aliases: dict[str, ast.expr] = {}  # NAME = <expr> anywhere in the file
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.imports[a.asname] = a.name
                    else:
                        self.imports[a.name.partition(".")[0]] = a.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node)
                for a in node.names:
                    self.imports[a.asname or a.name] = f"{base}:{a.name}"
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                if isinstance(node.targets[0], ast.Name):
                    self.aliases[node.targets[0].id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                self.aliases[node.target.id] = node.value

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.split(".")[: -node.level]
        return ".".join(parts + ([node.module] if node.module else []))

    def objects(self, expr: ast.expr, depth: int = 0) -> Iterator[object]:
        """Every object ``expr`` may denote (tuple items, ``A | B`` unions, aliases)."""
        if depth > 8:
            return
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            for e in expr.elts:
                yield from self.objects(e, depth + 1)
        elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            yield from self.objects(expr.left, depth + 1)
            yield from self.objects(expr.right, depth + 1)
        elif isinstance(expr, ast.Name):
            if expr.id in self.imports:
                yield from _members(_load(self.imports[expr.id]))
            elif expr.id in self.aliases:
                yield from self.objects(self.aliases[expr.id], depth + 1)
        elif isinstance(expr, ast.Attribute):
            for base in self.objects(expr.value, depth + 1):
                yield from _members(getattr(base, expr.attr, None))


def _members(obj: object) -> Iterator[object]:
    """``obj``, or the classes of an imported tuple or union (``REFITTABLE``, ``A | B``)."""
    if isinstance(obj, tuple):
        for item in obj:
            yield from _members(item)
    elif isinstance(obj, types.UnionType):
        yield from obj.__args__
    else:
        yield obj


def _load(target: str) -> object | None:
    """``"pkg.mod"`` (a module) or ``"pkg.mod:attr"`` (an attribute, else a submodule)."""
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError:
        return None
    if not attr:
        return mod
    if hasattr(mod, attr):
        return getattr(mod, attr)
    try:
        return importlib.import_module(f"{mod_name}.{attr}")
    except ImportError:
        return None


def _class_args(node: ast.AST) -> Iterator[ast.expr]:
    """The class arguments of ``isinstance``/``issubclass`` calls and ``type(x) is C``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
            yield node.args[1]
    elif isinstance(node, ast.Compare):
        left = node.left
        if (
            isinstance(left, ast.Call)
            and isinstance(left.func, ast.Name)
            and left.func.id == "type"
            and all(isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                    for op in node.ops)
        ):  # fmt: skip
            yield from node.comparators


def layer_checks(source: str, module: str = "prunekit.importance.example") -> list[int]:
    """Line numbers in ``source`` (of dotted ``module``) that test a torch layer class."""
    tree = ast.parse(source)
    resolver = _Resolver(tree, module)
    lines = []
    for node in ast.walk(tree):
        for arg in _class_args(node):
            if any(is_layer_class(obj) for obj in resolver.objects(arg)):
                lines.append(node.lineno)
    return sorted(set(lines))


def violations(root: Path = PACKAGE) -> list[str]:
    """``"prunekit/<file>:<line>"`` for every layer-class test outside the layer rooms."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in LAYER_ROOMS or rel in ALLOWED:
            continue
        module = ".".join(("prunekit", *path.relative_to(root).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for line in layer_checks(path.read_text(encoding="utf-8"), module):
            found.append(f"prunekit/{rel}:{line}")
    return found


def test_no_layer_isinstance_outside_surgery_and_graph() -> None:
    bad = violations()
    assert not bad, (
        "layer-type checks outside prunekit/surgery and prunekit/graph (ask the module's "
        "handler, prunekit.surgery.get_handler, instead): " + ", ".join(bad)
    )


def test_allowlist_entries_exist_and_still_need_it() -> None:
    for rel in ALLOWED:
        path = PACKAGE / rel
        assert path.is_file(), f"ALLOWED names {rel}, which does not exist: drop the entry"
        module = "prunekit." + rel.removesuffix(".py").replace("/", ".")
        assert layer_checks(path.read_text(encoding="utf-8"), module), (
            f"{rel} no longer tests layer classes: drop it from ALLOWED"
        )


def test_checker_flags_conv_isinstance_added_in_importance() -> None:
    src = "from torch import nn\ndef score(m):\n    return isinstance(m, nn.Conv2d)\n"
    assert layer_checks(src, "prunekit.importance.magnitude") == [3]


def test_checker_resolves_every_spelling_of_a_layer_class() -> None:
    src = "\n".join(
        [
            "import torch",  # 1
            "import torch.nn as tnn",
            "from torch import nn",
            "from torch.nn import Linear",
            "from torch.nn.modules.batchnorm import _BatchNorm",  # 5
            "from ..surgery import PrunedMultiheadAttention",
            "CONVS = (nn.Conv1d, nn.Conv2d)",
            "Layer = nn.Linear | nn.Conv2d",
            "def f(m, t):",
            "    a = isinstance(m, torch.nn.Linear)",  # 10
            "    b = isinstance(m, nn.modules.batchnorm._NormBase)",
            "    c = isinstance(m, (nn.ReLU, tnn.LayerNorm))",
            "    d = isinstance(m, Linear) or isinstance(m, _BatchNorm)",
            "    e = isinstance(m, CONVS) or issubclass(t, Layer)",
            "    f = type(m) is nn.Embedding or type(m) in (nn.GRU,)",  # 15
            "    g = isinstance(m, PrunedMultiheadAttention)",
            "    return a, b, c, d, e, f, g",
        ]
    )
    assert layer_checks(src, "prunekit.importance.example") == list(range(10, 17))


def test_checker_allows_generic_module_and_tensor_checks() -> None:
    src = "\n".join(
        [
            "import torch",
            "from torch import nn",
            "def f(m, t, handler):",
            "    a = isinstance(m, nn.Module) or isinstance(t, (torch.Tensor, nn.Parameter))",
            "    b = isinstance(m, nn.parallel.DistributedDataParallel)",
            "    c = isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))",
            "    d = isinstance(m, type(t)) and type(m) is type(t)",
            "    e = isinstance(handler, object) and isinstance(m, torch.jit.ScriptModule)",
            "    return a, b, c, d, e",
        ]
    )
    assert layer_checks(src) == []


def test_is_layer_class() -> None:
    assert is_layer_class(nn.Conv2d) and is_layer_class(nn.modules.batchnorm._NormBase)
    assert not is_layer_class(nn.Module) and not is_layer_class(torch.Tensor)
    assert not is_layer_class(nn.Parameter) and not is_layer_class(nn.Sequential)


# --- what the handlers now know: the callers ask them, so custom layers work too -------------


class ChannelScale(nn.Module):
    """A custom per-channel norm-like scale (not a torch norm class) with running stats."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n))
        self.register_buffer("mean", torch.zeros(n))
        self.momentum: float | None = 0.1

    def reset_running_stats(self) -> None:
        self.mean.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            m = self.momentum if self.momentum is not None else 0.0
            with torch.no_grad():
                self.mean.mul_(1 - m).add_(m * x.detach().mean((0, 2, 3)))
        return (x - self.mean[:, None, None]) * self.gamma[:, None, None]


class ChannelScaleHandler(Handler):
    def role(self, module: nn.Module, tensor: str) -> str:
        return "norm_scale" if tensor == "gamma" else super().role(module, tensor)

    def running_stats(self, module: nn.Module) -> RunningStats | None:
        return RunningStats(module, ("mean",))


class PlainAffine(nn.Module):
    """A custom ``y = x W^T + b`` layer that is not an ``nn.Linear``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in**0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


class PlainAffineHandler(Handler):
    def refit_geometry(self, module: nn.Module) -> RefitGeometry | str | None:
        return linear_geometry()


register_handler(ChannelScale, ChannelScaleHandler(), override=True)
register_handler(PlainAffine, PlainAffineHandler(), override=True)


def _scaled_net() -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), ChannelScale(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        net[1].gamma.copy_(torch.tensor([0.5, -2.0, 1.0, 0.1]))
    return net.eval()


def test_members_carry_the_roles_their_handlers_give() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    graph = prunekit.analyze(net, torch.randn(1, 1, 8, 8))
    roles = {m.name: m.role for m in graph.groups[0].members}
    assert roles == {
        "0.weight": "weight",
        "0.bias": "bias",
        "1.weight": "norm_scale",
        "1.bias": "bias",
        "1.running_mean": "statistic",
        "1.running_var": "statistic",
        "3.weight": "weight",
    }
    assert set(roles.values()) <= set(ROLES)
    # the JSON form: a role is written once set; a member built by hand writes what it did
    assert graph.groups[0].members[2].to_dict()["role"] == "norm_scale"
    assert Member("fc.weight", 0, [[0], [1]]).to_dict() == {
        "name": "fc.weight",
        "dim": 0,
        "indices": [[0], [1]],
    }


def test_regression_bn_scale_reads_the_norm_scale_role_not_the_layer_class() -> None:
    """BNScale used to test ``isinstance(module, _NormBase)``: a custom norm layer's scale
    was ignored (L2 fallback). It now ranks by the members with role ``"norm_scale"``."""
    net = _scaled_net()
    graph = prunekit.analyze(net, torch.randn(1, 1, 8, 8))
    crit = BNScale()
    crit.prepare(net, graph)
    assert crit(graph.groups[0], graph.tensors).tolist() == pytest.approx([0.5, 2.0, 1.0, 0.1])
    assert is_norm_weight(net[1], "gamma") and not is_norm_weight(net[0], "weight")


def test_regression_recalibration_asks_the_handler_for_running_stats() -> None:
    """recalibrate_bn used to find layers by ``isinstance(m, _BatchNorm)``; a custom layer
    whose handler reports running statistics is now re-estimated (and momentum restored)."""
    net = _scaled_net()
    x = torch.randn(16, 1, 8, 8) + 3.0
    assert [n for n, _ in batchnorm_layers(net)] == ["1"]
    assert recalibrate_bn(net, [x]) == 16
    torch.testing.assert_close(net[1].mean, net[0](x).mean((0, 2, 3)))
    assert net[1].momentum == 0.1 and not net.training


def test_regression_compensation_refits_any_layer_with_a_refit_geometry() -> None:
    """compensate used to refit only ``isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))``;
    any layer whose handler gives a refit geometry is refit now."""
    torch.manual_seed(0)
    net = nn.Sequential(PlainAffine(6, 8), nn.ReLU(), PlainAffine(8, 3)).eval()
    small = prunekit.prune(net, torch.randn(1, 6), ratio=0.5).model
    report = compensate(small, net, [torch.randn(64, 6)])
    assert [r.name for r in report.layers] == ["0", "2"]
    assert report.updated == ["2"]
    assert report.layers[1].error_after < report.layers[1].error_before


def test_batch_norms_fold_at_inference_and_instance_norms_do_not() -> None:
    bn, inorm = nn.BatchNorm2d(3), nn.InstanceNorm2d(3, affine=True)
    assert get_handler(bn).folds_at_inference(bn) and not get_handler(inorm).folds_at_inference(
        inorm
    )
    assert get_handler(bn).running_stats(bn) is not None
    assert get_handler(inorm).running_stats(inorm) is None  # never recalibrated
    assert role_of(inorm, "weight") == "norm_scale"  # but ranked by bn_scale, and regularised
    assert BNScaleL1(1.0)(nn.Sequential(inorm)).item() == 3.0


def test_input_dims_come_from_the_handlers() -> None:
    fc, conv_t, emb = nn.Linear(2, 3), nn.ConvTranspose2d(4, 8, 3), nn.Embedding(5, 4)
    assert get_handler(fc).input_dim(fc, "weight", 2) == 1
    assert get_handler(conv_t).input_dim(conv_t, "weight", 4) == 0
    assert get_handler(fc).input_dim(fc, "bias", 1) is None
    assert get_handler(emb).input_dim(emb, "weight", 2) == 0
