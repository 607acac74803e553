"""Suite-wide settings: one intra-op thread (tiny models run fastest that way, and a shared
2-core CI machine is not oversubscribed by several torch thread pools), and Hugging Face offline
(the tests build tiny models from config classes and read MiniLM from its package: nothing is
downloaded; set before any test imports transformers / huggingface_hub, which read it once)."""

from __future__ import annotations

import os

import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
torch.set_num_threads(1)
