"""Suite-wide settings: one intra-op thread (tiny models run fastest that way, and a shared
2-core CI machine is not oversubscribed by several torch thread pools)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
