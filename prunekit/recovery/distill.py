"""Knowledge distillation from the unpruned model (the teacher) into the pruned one.

Three signals, combined into one loss by :meth:`Distillation.loss`:

- ``mode="logits"`` (Hinton et al. 2015): ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T))``
  plus ``(1 - alpha)`` times the task loss; the ``T^2`` keeps gradient magnitudes comparable
  across temperatures. With ``alpha=1`` no labels are needed.
- ``mode="embedding"`` (sentence encoders such as MiniLM): ``alpha`` times ``1 - cos(s, t)``
  (``embedding_loss="cosine"``) or the MSE between the student's and teacher's output
  embeddings, plus ``(1 - alpha)`` times the task loss. The default embedding is the tensor
  output itself, or the mask-aware mean over tokens of ``last_hidden_state`` (the
  sentence-transformers pooling).
- ``features={"student_module": "teacher_module"}`` (FitNets, Romero et al. 2015):
  ``feature_weight`` times the MSE between the modules' outputs, captured by forward hooks.

Width mismatches (a pruned student has fewer channels or hidden units than its teacher) are
bridged by a learned linear projection of the student's feature along the one dim that
differs (a 1x1 convolution for ``(N, C, H, W)`` maps), initialised by PyTorch's default and
trained with the student: :meth:`setup` creates them and ``finetune`` adds them to its
optimizer. Features that differ in more than one dim raise :class:`RecoveryError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, RecoveryError
from .batches import call_model
from .losses import logits_of

__all__ = ["Distillation", "kd_loss", "mean_pool"]

_MODES = ("logits", "embedding")
_EMBEDDING_LOSSES = ("cosine", "mse")


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over samples.

    Logits of any shape ``(..., C)`` are flattened to ``(-1, C)``; each row is one sample.

    Example:
        >>> import torch
        >>> s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]])
        >>> float(kd_loss(s, t, 4.0))
        0.0
    """
    s = student.reshape(-1, student.shape[-1]).float()
    t = teacher.reshape(-1, teacher.shape[-1]).float()
    log_s = F.log_softmax(s / temperature, dim=-1)
    log_t = F.log_softmax(t / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2


def mean_pool(output: Any, batch: Any) -> torch.Tensor:
    """Sentence embeddings: mask-aware token mean of ``(N, L, D)`` hidden states.

    Takes ``output`` itself when it is a tensor, else ``.last_hidden_state`` (or ``[0]``); a
    2-D tensor is returned as is. The mask is ``batch["attention_mask"]`` when present.

    Example:
        >>> import torch
        >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> mean_pool(h, {"attention_mask": torch.tensor([[1, 1, 0]])}).tolist()
        [[2.0]]
    """
    found = output.get("last_hidden_state") if isinstance(output, dict) else None
    found = getattr(output, "last_hidden_state", found)
    hidden = found if isinstance(found, torch.Tensor) else logits_of(output)
    if hidden.dim() == 2:
        return hidden
    mask = batch.get("attention_mask") if isinstance(batch, dict) else None
    if mask is None:
        return hidden.mean(dim=1)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    pooled: torch.Tensor = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1e-9)
    return pooled


def _submodule(model: nn.Module, name: str, role: str) -> nn.Module:
    """``model``'s submodule ``name``; a wrapper's inner ``.module`` is searched too (DDP)."""
    for root in (model, getattr(model, "module", None)):
        if isinstance(root, nn.Module):
            try:
                return root.get_submodule(name)
            except AttributeError:
                continue
    names = [n for n, _ in model.named_modules() if n][:12]
    raise ConfigError(
        f"Distillation features: the {role} has no module {name!r}; valid names include {names}"
    )


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    hidden = getattr(output, "last_hidden_state", None)
    if isinstance(hidden, torch.Tensor):
        return hidden
    raise RecoveryError(
        f"Distillation features: a hooked module returned {type(output).__name__}, not a tensor; "
        "name a module whose output is a tensor (or a tuple starting with one)"
    )


class _Projection(nn.Module):
    """A bias-free linear map along one dim: student width -> teacher width."""

    def __init__(self, dim: int, width_in: int, width_out: int) -> None:
        super().__init__()
        self.dim = dim
        self.linear = nn.Linear(width_in, width_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x.movedim(self.dim, -1)).movedim(-1, self.dim)
        return out


def _bridge(student: torch.Tensor, teacher: torch.Tensor, what: str) -> nn.Module | None:
    """``None`` if shapes match, a projection if exactly one dim differs, else an error."""
    s, t = tuple(student.shape), tuple(teacher.shape)
    if s == t:
        return None
    diff = [d for d in range(len(s)) if len(s) == len(t) and s[d] != t[d]]
    if len(diff) != 1 or diff[0] == 0:
        raise RecoveryError(
            f"Distillation: {what} has shape {s} in the student and {t} in the teacher; they "
            "may differ in one non-batch dim only (the pruned width); pick layers whose "
            "outputs have the same layout"
        )
    return _Projection(diff[0], s[diff[0]], t[diff[0]])


@dataclass
class Distillation:
    """Distil ``teacher`` (typically the unpruned model) into the model being fine-tuned.

    Pass it as ``finetune(..., distill=Distillation(teacher))``. The teacher runs in eval mode
    without gradients on the same inputs as the student.

    Args:
        teacher: the teacher model (moved to the training device by ``finetune``).
        temperature: softmax temperature ``T`` of ``mode="logits"``.
        alpha: weight of the distillation term; ``1 - alpha`` weighs the task loss (which is
            skipped, and labels not needed, when ``alpha == 1``).
        features: ``{"student module": "teacher module"}`` pairs whose outputs are matched.
        mode: ``"logits"`` or ``"embedding"``.
        feature_weight: weight of the feature-matching terms.
        embedding_loss: ``"cosine"`` (``1 - cos``) or ``"mse"``, for ``mode="embedding"``.
        embed: ``embed(output, batch) -> (N, D)`` embeddings; default :func:`mean_pool`.

    Attributes:
        projections_: the learned width projections, by student module name (``"embedding"``
            for the output embedding), created by :meth:`setup`.

    Example:
        >>> import torch
        >>> teacher = torch.nn.Linear(4, 3)
        >>> kd = Distillation(teacher, temperature=2.0, alpha=1.0)
        >>> x = torch.randn(5, 4)
        >>> with torch.no_grad():
        ...     float(kd.loss(teacher(x), x, (x, None), lambda: torch.tensor(0.0))) < 1e-6
        True
    """

    teacher: nn.Module
    temperature: float = 4.0
    alpha: float = 0.5
    features: dict[str, str] | None = None
    mode: str = "logits"
    feature_weight: float = 1.0
    embedding_loss: str = "cosine"
    embed: Callable[[Any, Any], torch.Tensor] | None = None
    projections_: nn.ModuleDict = field(default_factory=nn.ModuleDict, init=False, repr=False)
    _captured: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, nn.Module):
            raise ConfigError(
                f"Distillation teacher must be an nn.Module, got {type(self.teacher).__name__}"
            )
        if not self.temperature > 0:
            raise ConfigError(f"Distillation temperature={self.temperature!r} must be > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"Distillation alpha={self.alpha!r} must be in [0, 1]")
        if self.mode not in _MODES:
            raise ConfigError(f"Distillation mode={self.mode!r} is unknown; use one of {_MODES}")
        if self.embedding_loss not in _EMBEDDING_LOSSES:
            raise ConfigError(
                f"Distillation embedding_loss={self.embedding_loss!r} is unknown; use one of "
                f"{_EMBEDDING_LOSSES}"
            )
        if self.features is not None and not isinstance(self.features, dict):
            raise ConfigError(
                "Distillation features must be a dict {'student module': 'teacher module'}, got "
                f"{type(self.features).__name__}"
            )

    @contextmanager
    def attach(self, student: nn.Module) -> Iterator[None]:
        """Install the feature hooks on ``student`` and the teacher; put the teacher in eval."""
        handles = []
        was_training = self.teacher.training
        try:
            for s_name, t_name in (self.features or {}).items():
                for role, root, name in (
                    ("student", student, s_name),
                    ("teacher", self.teacher, t_name),
                ):
                    module = _submodule(root, name, role)
                    handles.append(module.register_forward_hook(self._hook(f"{role}:{s_name}")))
            self.teacher.eval()
            yield
        finally:
            for h in handles:
                h.remove()
            self.teacher.train(was_training)
            self._captured.clear()

    def _hook(self, key: str) -> Callable[[nn.Module, Any, Any], None]:
        def capture(module: nn.Module, args: Any, output: Any) -> None:
            self._captured[key] = _first_tensor(output)

        return capture

    def setup(self, student: nn.Module, inputs: Any, batch: Any) -> list[nn.Parameter]:
        """Run both models once on ``inputs`` and create the width projections that are needed.

        Call inside :meth:`attach`. Returns the new trainable parameters (to optimise along
        with the student). Logit distillation without ``features`` needs none, and runs
        nothing.
        """
        if self.mode == "logits" and not self.features:
            return []
        with torch.no_grad():
            out = call_model(student, inputs)
            teacher_out = call_model(self.teacher, inputs)
        device = next((p.device for p in student.parameters()), torch.device("cpu"))
        pairs = [
            (n, self._captured[f"student:{n}"], self._captured[f"teacher:{n}"])
            for n in (self.features or {})
        ]
        if self.mode == "embedding":
            pairs.append(("embedding", self._embed(out, batch), self._embed(teacher_out, batch)))
        for name, s, t in pairs:
            bridge = _bridge(s, t, f"feature {name!r}")
            if bridge is not None:
                self.projections_[name.replace(".", "/")] = bridge.to(device)
        return list(self.projections_.parameters())

    def _embed(self, output: Any, batch: Any) -> torch.Tensor:
        return (self.embed or mean_pool)(output, batch)

    def _project(self, name: str, x: torch.Tensor) -> torch.Tensor:
        key = name.replace(".", "/")
        return self.projections_[key](x) if key in self.projections_ else x

    def loss(
        self, student_out: Any, inputs: Any, batch: Any, task: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """The combined loss for one batch, given the student's output on ``inputs``.

        Runs the teacher on ``inputs`` (no gradient); ``task()`` computes the task loss and is
        only called when ``alpha < 1``.
        """
        with torch.no_grad():
            teacher_out = call_model(self.teacher, inputs)
        if self.mode == "logits":
            main = kd_loss(logits_of(student_out), logits_of(teacher_out), self.temperature)
        else:
            s = self._project("embedding", self._embed(student_out, batch)).float()
            t = self._embed(teacher_out, batch).float()
            if self.embedding_loss == "cosine":
                main = (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
            else:
                main = F.mse_loss(s, t)
        total = self.alpha * main
        if self.alpha < 1.0:
            total = total + (1.0 - self.alpha) * task()
        for name in self.features or {}:
            s_f = self._project(name, self._captured[f"student:{name}"])
            t_f = self._captured[f"teacher:{name}"]
            total = total + self.feature_weight * F.mse_loss(s_f.float(), t_f.float())
        return total

    def to_dict(self) -> dict[str, Any]:
        """The settings (not the teacher's weights) as a plain dict."""
        return {
            "teacher": type(self.teacher).__name__,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "features": dict(self.features or {}),
            "mode": self.mode,
            "feature_weight": self.feature_weight,
            "embedding_loss": self.embedding_loss,
        }
