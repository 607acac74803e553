"""Save/load pruned models (plans + safetensors, no pickle) and export to ONNX / TorchScript."""

from .checks import ExportReport
from .hf import from_pretrained, save_pretrained
from .onnx import export_onnx
from .saving import SAVE_FORMAT, load, read_meta, save
from .torchscript import export_torchscript

__all__ = [
    "from_pretrained",
    "save_pretrained",
    "SAVE_FORMAT",
    "ExportReport",
    "export_onnx",
    "export_torchscript",
    "load",
    "read_meta",
    "save",
]
