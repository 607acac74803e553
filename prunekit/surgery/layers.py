"""Handlers for the common layer families: conv, linear, norms, embedding, PReLU."""

from __future__ import annotations

import torch
from torch import nn

from .refit import RefitGeometry, conv_geometry, linear_geometry
from .registry import Handler, register_handler, register_handler_for_name
from .running_stats import RunningStats


class ConvHandler(Handler):
    """``nn.Conv{1,2,3}d`` and ``nn.ConvTranspose{1,2,3}d`` (grouped and depthwise too)."""

    def output_dims(self, module: nn.Module) -> dict[str, int]:
        assert isinstance(module, nn.modules.conv._ConvNd)
        return {"weight": 1 if module.transposed else 0, "bias": 0}

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.modules.conv._ConvNd)
        w = module.weight
        if module.transposed:
            module.in_channels = w.shape[0]
            module.out_channels = w.shape[1] * module.groups
            return
        old_groups, old_in, old_out = module.groups, module.in_channels, module.out_channels
        if old_groups > 1 and old_in // old_groups == 1 and w.shape[1] == 1:
            per_group_out = old_out // old_groups
            module.groups = max(1, w.shape[0] // per_group_out)
        module.out_channels = w.shape[0]
        module.in_channels = w.shape[1] * module.groups

    def refit_geometry(self, module: nn.Module) -> RefitGeometry | str | None:
        """Conv1d and Conv2d (im2col patches); transposed and 3-D convolutions are not refit."""
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            return conv_geometry(module)
        return None


class LinearHandler(Handler):
    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.Linear)
        module.out_features, module.in_features = module.weight.shape

    def refit_geometry(self, module: nn.Module) -> RefitGeometry | str | None:
        return linear_geometry()


class NormHandler(Handler):
    """Batch and instance norms (``_NormBase``): per-channel scale, shift and statistics."""

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.modules.batchnorm._NormBase)
        ref = module.weight if module.weight is not None else module.running_mean
        if ref is not None:
            module.num_features = ref.shape[0]

    def role(self, module: nn.Module, tensor: str) -> str:
        if tensor == "weight":
            return "norm_scale"
        if tensor in ("running_mean", "running_var"):
            return "statistic"
        return super().role(module, tensor)


class BatchNormHandler(NormHandler):
    """``nn.BatchNorm{1,2,3}d``, lazy and sync batch norms: statistics re-estimated from
    data after a cut, folded into the layer before them at inference."""

    def running_stats(self, module: nn.Module) -> RunningStats | None:
        assert isinstance(module, nn.modules.batchnorm._BatchNorm)
        if not module.track_running_stats or module.running_mean is None:
            return None
        return RunningStats(module)

    def folds_at_inference(self, module: nn.Module) -> bool:
        return True


class LayerNormHandler(Handler):
    def update(self, module: nn.Module) -> None:
        assert isinstance(module, (nn.LayerNorm, nn.RMSNorm))
        if module.weight is not None:
            module.normalized_shape = tuple(module.weight.shape)


class GroupNormHandler(Handler):
    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.GroupNorm)
        if module.weight is None:
            return
        new = module.weight.shape[0]
        if module.num_groups == module.num_channels:
            module.num_groups = new
        module.num_channels = new


class EmbeddingHandler(Handler):
    def output_dims(self, module: nn.Module) -> dict[str, int]:
        return {"weight": 1}

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, (nn.Embedding, nn.EmbeddingBag))
        module.num_embeddings, module.embedding_dim = module.weight.shape


class PReLUHandler(Handler):
    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.PReLU)
        module.num_parameters = module.weight.numel()


class TransposedLinearHandler(Handler):
    """Hugging Face GPT-2 style ``Conv1D``: weight ``[in, out]``, attribute ``nf`` = out."""

    def output_dims(self, module: nn.Module) -> dict[str, int]:
        return {"weight": 1, "bias": 0}

    def update(self, module: nn.Module) -> None:
        weight = module.weight
        assert isinstance(weight, torch.Tensor)
        setattr(module, "nf", int(weight.shape[1]))  # noqa: B010  (untyped third-party attr)
        if hasattr(module, "nx"):
            setattr(module, "nx", int(weight.shape[0]))  # noqa: B010


register_handler_for_name("transformers.pytorch_utils.Conv1D", TransposedLinearHandler())
register_handler(nn.modules.conv._ConvNd, ConvHandler())
register_handler(nn.Linear, LinearHandler())
register_handler(nn.modules.batchnorm._NormBase, NormHandler())
register_handler(nn.modules.batchnorm._BatchNorm, BatchNormHandler())
register_handler(nn.LayerNorm, LayerNormHandler())
register_handler(nn.RMSNorm, LayerNormHandler())
register_handler(nn.GroupNorm, GroupNormHandler())
register_handler(nn.Embedding, EmbeddingHandler())
register_handler(nn.EmbeddingBag, EmbeddingHandler())
register_handler(nn.PReLU, PReLUHandler())
