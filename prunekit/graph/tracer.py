"""Eager tracing at the ATen dispatch level, with label propagation as ops execute.

The model runs once on the example inputs inside a ``TorchDispatchMode``. Every ATen op
that reaches the dispatcher is handed to its rule (``graph.registry``), so tensors are
tracked by identity through every op, including non-differentiable ones (integer
indexing, masks, shapes); no graph needs to be symbolic. Modules with a leaf rule are
traced as one node. Parameters and buffers start with fresh atoms on every dimension.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .._modelio import call_model, eval_mode, flatten_tensors  # re-exported: the model I/O rules
from ..errors import ConfigError, TraceError, UnsupportedOpWarning
from . import rules_compute, rules_reduce, rules_shape  # noqa: F401  (registers rules)
from .context import Info, TraceContext
from .registry import leaf_rule, op_rule
from .rules_compute import pointwise_rule
from .sizes import check_scalars, drop_size_reads, record_size_read

ATTENTION_UNITS = ("heads", "head_dims")

__all__ = ["ATTENTION_UNITS", "trace", "TraceResult", "call_model", "eval_mode", "flatten_tensors"]

_NO_LABEL_OPS = {
    "empty", "zeros", "ones", "full", "arange", "rand", "randn", "randint", "scalar_tensor",
    "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel", "is_same_size", "linspace",
    "empty_strided", "new_empty", "new_zeros", "new_ones", "new_full", "new_empty_strided",
    "set_", "_assert_async", "_assert_tensor_metadata", "isnan", "tril", "triu",
}  # fmt: skip


@dataclass
class TraceResult:
    """What one traced forward pass produced."""

    ctx: TraceContext
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> param/buffer
    infos: dict[str, Info] = field(default_factory=dict)
    is_param: dict[str, bool] = field(default_factory=dict)
    output: Any = None
    unused: list[str] = field(default_factory=list)


def _bind(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    schema_args = func._schema.arguments
    for i, a in enumerate(args):
        name = schema_args[i].name if i < len(schema_args) else f"arg{i}"
        bound[name] = a
    bound.update(kwargs)
    return bound


def _is_pointwise(func: Any, name: str) -> bool:
    if torch.Tag.pointwise in func.tags:
        return True
    if name.endswith("_"):  # in-place variant of a pointwise op (hardswish_, ...)
        packet = getattr(torch.ops.aten, name[:-1], None)
        default = getattr(packet, "default", None)
        return default is not None and torch.Tag.pointwise in default.tags
    return False


class _Mode(TorchDispatchMode):
    def __init__(self, ctx: TraceContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.suppress = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.suppress:
            return out
        name = func.overloadpacket.__name__
        bound = _bind(func, args, kwargs)
        rule = op_rule(name)
        if rule is None and _is_pointwise(func, name):
            rule = pointwise_rule
        if rule is None and name.endswith("_") and op_rule(name[:-1]) is not None:
            rule = op_rule(name[:-1])
        if self.ctx.size_reads:
            check_scalars(self.ctx, name, bound, pointwise=rule is pointwise_rule)
        if name in _NO_LABEL_OPS:
            return out
        if rule is None:
            infos = [self.ctx.get(t) for t in flatten_tensors(list(bound.values()))]
            self.ctx.unsupported_op(name, infos)
            return out
        try:
            rule(self.ctx, name, bound, out)
        except Exception as exc:  # a rule that cannot map this call freezes what it touches
            infos = [self.ctx.get(t) for t in flatten_tensors(list(bound.values()))]
            self.ctx.unsupported_op(f"{name} ({type(exc).__name__}: {exc})", infos)
        return out


class _FnMode(TorchFunctionMode):
    """Records which Python-level torch function (``chunk`` vs ``split``) is running, and
    the Python-level reads of prunable sizes (``q.shape[-1]``, see ``graph.sizes``)."""

    def __init__(self, ctx: TraceContext, dispatch: _Mode) -> None:
        super().__init__()
        self.ctx = ctx
        self.dispatch = dispatch

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        self.ctx.fn_stack.append(getattr(func, "__name__", ""))
        try:
            out = func(*args, **(kwargs or {}))
        finally:
            self.ctx.fn_stack.pop()
        if not self.dispatch.suppress:
            record_size_read(self.ctx, func, args)
        return out


def _opaque_rule(
    ctx: TraceContext, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> None:
    """A TorchScript submodule: prunekit can neither see inside it nor cut it, so its
    parameters and every labelled dim of its inputs and outputs are frozen."""
    path = ctx.module_path or "<root>"
    reason = (
        f"TorchScript submodule '{path}' ({type(module).__name__}) is opaque to prunekit; "
        "pass the eager module (before torch.jit.script/trace) to prune through it"
    )
    for t in flatten_tensors([list(args), kwargs]):
        ctx.freeze_info(ctx.get(t), reason, kind="unsupported")
    for t in [*module.parameters(), *module.buffers()]:
        ctx.freeze_info(ctx.get(t), reason, kind="unsupported")
    for t in flatten_tensors(out):
        ctx.freeze_info(ctx.fresh(t, zero=False), reason, kind="unsupported")
    if path not in ctx.opaque:
        ctx.opaque.append(path)


def _leaf(module: nn.Module) -> Any:
    if isinstance(module, torch.jit.ScriptModule):
        return _opaque_rule
    return leaf_rule(module)


@contextmanager
def _module_hooks(model: nn.Module, ctx: TraceContext, mode: _Mode) -> Iterator[None]:
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    leaf_stack: list[nn.Module] = []

    def pre(module: nn.Module, args: Any) -> None:
        ctx.module_stack.append((names.get(id(module), type(module).__name__), module))
        if _leaf(module) is not None:
            if not leaf_stack:
                mode.suppress += 1
            leaf_stack.append(module)

    def post(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        if leaf_stack and leaf_stack[-1] is module:
            leaf_stack.pop()
            if not leaf_stack:
                mode.suppress -= 1
                rule = _leaf(module)
                assert rule is not None
                rule(ctx, module, tuple(args), dict(kwargs), output)
        drop_size_reads(ctx, len(ctx.module_stack))
        if ctx.module_stack:
            ctx.module_stack.pop()

    h1 = nn_module.register_module_forward_pre_hook(pre)
    h2 = nn_module.register_module_forward_hook(post, with_kwargs=True)
    try:
        yield
    finally:
        h1.remove()
        h2.remove()


MODES = ("eval", "train")


@contextmanager
def _trace_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Eval mode, or train mode with every buffer (BN running stats) and the RNG restored."""
    if mode == "eval":
        with eval_mode(model):
            yield
        return
    flags = [(m, m.training) for m in model.modules()]
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        for m, flag in flags:
            m.training = flag
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in saved:
                    b.copy_(saved[name])


def _detach_caches(model: nn.Module) -> None:
    """Undo a side effect of tracing with autograd on: tensors a model cached during the
    trace (LeViT's attention-bias cache) would keep autograd history and break deepcopy."""
    for m in model.modules():
        for key, val in list(vars(m).items()):
            if isinstance(val, torch.Tensor) and val.grad_fn is not None:
                setattr(m, key, val.detach())
            elif isinstance(val, dict):
                for k, v in list(val.items()):
                    if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                        val[k] = v.detach()


def trace(
    model: nn.Module, example_inputs: Any, *, mode: str = "eval", attention: str = "heads"
) -> TraceResult:
    """Run ``model`` once on ``example_inputs`` and propagate unit labels through every op.

    The model runs in eval mode (``mode="train"``: train mode, for branches such as
    auxiliary heads that only run in training; buffers are restored afterwards) with
    autograd enabled so that fused inference fast paths are not taken.
    """
    if mode not in MODES:
        raise ConfigError(f"trace mode {mode!r} is unknown; use one of {MODES}")
    if attention not in ATTENTION_UNITS:
        raise ConfigError(
            f"attention={attention!r} is unknown; use 'heads' (prune whole attention heads) or "
            "'head_dims' (prune the same dims of every head)"
        )
    ctx = TraceContext(attention=attention)
    result = TraceResult(ctx)
    for name, p in model.named_parameters():
        result.tensors[name], result.is_param[name] = p, True
    for name, b in model.named_buffers():
        if b.dim() > 0 and b.is_floating_point():
            result.tensors[name], result.is_param[name] = b, False
    for name, t in result.tensors.items():
        ctx.pin(t)
        result.infos[name] = ctx.fresh(t, zero=result.is_param[name])
    dispatch = _Mode(ctx)
    try:
        with (
            _trace_mode(model, mode),
            torch.enable_grad(),
            _module_hooks(model, ctx, dispatch),
            _FnMode(ctx, dispatch),
            dispatch,
        ):
            output = call_model(model, example_inputs)
    except Exception as exc:  # the user's forward failed: report it with the inputs
        _detach_caches(model)
        raise TraceError(
            f"running the model on the example inputs failed ({type(exc).__name__}: {exc}); "
            "pass example_inputs that the model's forward accepts: a tensor, a tuple of "
            "positional inputs, or a dict of keyword inputs"
        ) from exc
    _detach_caches(model)
    for t in flatten_tensors(output):
        ctx.freeze_info(ctx.get(t), "model output", kind="io")
    result.output = output
    _warn_unsupported(ctx)
    result.unused = [
        name
        for name, info in result.infos.items()
        if result.is_param[name]
        and not any(lab is not None and ctx.table.touched[lab].any() for lab in info.labels)
    ]
    if result.unused:
        warnings.warn(
            f"prunekit: {len(result.unused)} parameters were not used by the forward pass on "
            f"the example inputs ({', '.join(result.unused[:4])}...), e.g. branches that only "
            "run in training; they are not pruned and may not fit the pruned model. Trace in "
            "train mode (trace_mode='train') to include them.",
            UserWarning,
            stacklevel=3,
        )
    return result


def _warn_unsupported(ctx: TraceContext) -> None:
    for path in ctx.opaque:
        warnings.warn(
            f"prunekit: submodule '{path}' is a TorchScript module; prunekit cannot see or "
            "cut inside it, so it is traced as one opaque node: its parameters and the "
            "units of its inputs and outputs are frozen. Pass the eager module (before "
            "torch.jit.script/trace) to prune through it.",
            UnsupportedOpWarning,
            stacklevel=4,
        )
    seen: set[tuple[str, str]] = set()
    for u in ctx.unsupported:
        key = (u.op, u.module_path)
        if key in seen:
            continue
        seen.add(key)
        warnings.warn(
            f"prunekit: op aten.{u.op} in module '{u.module_path or '<root>'}' is not "
            "supported by the dependency engine; the groups that touch it are frozen. "
            "Register an op rule (prunekit.graph.register_op_rule) or a module handler "
            "(prunekit.surgery.register_handler) to prune through it.",
            UnsupportedOpWarning,
            stacklevel=3,
        )
