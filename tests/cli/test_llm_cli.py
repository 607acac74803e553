"""The CLI's language-model paths: ``prunekit prune`` on an LLM recipe and ``prunekit
evaluate`` on a causal LM, on a tiny LLaMA saved with a word-level tokenizer trained here
(offline, seconds) and real Shakespeare text; one check on the real SmolLM2-135M."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from typer.testing import CliRunner

from prunekit.cli import app
from prunekit.data import shakespeare
from prunekit.data.text import TextSource, load_text, register_text_dataset
from prunekit.evaluation import perplexity
from prunekit.report import RunRecord
from prunekit.report.summary import headline

runner = CliRunner()

DATASET = "tiny_plays"  # two real works: one to calibrate on, one held out
register_text_dataset(
    DATASET,
    TextSource(("macbeth",), ("twelfth_night",), read=shakespeare.read_work),
    override=True,
)

RECIPE = """\
kind: llm
name: tiny
threads: 1
model: ./tiny
data: {{name: {data}, calibration_sequences: 8, seq_len: 64}}
prune:
  - {{method: structured, criterion: flap, head_ratio: 0.5, ffn_ratio: 0.25}}
  - {{method: depth, blocks: 1}}
  - {{method: sparse, criterion: wanda, pattern: "2:4"}}
evaluation:
  windows: 4
  speed: {{prompt_tokens: 16, new_tokens: 4, repeats: 1}}
  sample: {{prompt: "To be or not", new_tokens: 4}}
"""


DISTILL_RECIPE = """\
kind: llm
name: tiny-distill
threads: 1
model: ./tiny
data: {name: tiny_plays, calibration_sequences: 8, seq_len: 64}
prune:
  - {method: structured, criterion: wanda_sp, ffn_ratio: 0.5, compensation: lsq}
  - {method: depth, ratio: 0.25}
recovery:
  distill: {max_steps: 2, sequences: 6, batch_size: 2, lr: 0.001}
evaluation: {windows: 2, speed: false, sample: false}
"""


def save_tiny_llama(folder: Path) -> Path:
    """A random 4-block LLaMA (hidden 32, 4 query heads on 2 KV heads, FFN 64) and a
    word-level tokenizer trained on Macbeth, saved as a Hugging Face directory."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(shakespeare.read_work("macbeth").splitlines(), trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("llmcli")
    save_tiny_llama(base / "tiny")
    (base / "r.yaml").write_text(RECIPE.format(data=DATASET))
    (base / "d.yaml").write_text(DISTILL_RECIPE)
    return base


def _invoke(args: list[str]) -> Any:
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def ran(root: Path) -> dict[str, Any]:
    res = _invoke(["--json", "prune", str(root / "r.yaml"), "--out", str(root / "run")])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.stdout))


def test_prune_runs_every_step_and_writes_one_report(ran: dict[str, Any], root: Path) -> None:
    run = root / "run"
    for name in ("report.html", "report.md", "metrics.json", "record.json", "prune.json",
                 "llm_run.json", "recipe.yaml", "model/config.json", "model/tokenizer.json"):  # fmt: skip
        assert (run / name).is_file(), name
    assert [s["method"] for s in ran["steps"]] == ["structured", "depth", "sparse"]
    assert ran["steps"][0]["heads_per_group"] == 1 and ran["steps"][0]["ffn_neurons"] == 16
    before, after = ran["baseline"], ran["pruned"]
    assert after["params"] < before["params"]
    assert math.isfinite(after["perplexity"]) and 0.0 <= after["agreement"] <= 1.0
    lang = after["language"]
    assert lang["blocks"] == 3 and lang["windows"] == 4 and lang["seq_len"] == 64
    assert lang["block_nonzero"] == pytest.approx(lang["block_params"] / 2, rel=0.05)  # 2:4
    assert lang["speed"]["new_tokens"] == 4 and "text" in lang["sample"]
    assert not (run / ".resume").exists()  # a finished run keeps no resume state
    report = (run / "report.md").read_text()
    assert "## Language model: perplexity, agreement, speed" in report
    assert "x dense" in report and "### Prune steps" in report
    (run / "report.md").unlink()
    again = _invoke(["report", str(run)])  # re-rendered from record.json alone
    assert again.exit_code == 0, again.output
    assert (run / "report.md").read_text() == report


def test_saved_model_reloads_with_plain_transformers(ran: dict[str, Any], root: Path) -> None:
    folder = root / "run" / "model"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (3, 2, 48)
    record = json.loads((root / "run" / "record.json").read_text())
    assert record["meta"]["model_reload"]["max_abs_logit_diff"] == 0.0
    # the reloaded model scores the held-out text exactly as the run measured it
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    stream = load_text(DATASET, tokenizer=tok, split="evaluation")
    ppl = perplexity(model, stream, seq_len=64, max_windows=4, progress=False)
    assert ppl.perplexity == pytest.approx(ran["pruned"]["perplexity"], rel=1e-6)


def test_evaluate_a_directory_with_explicit_windows(root: Path) -> None:
    folder = root / "tiny"
    res = _invoke(["--json", "evaluate", "--model", str(folder), "--data", DATASET,
                   "--seq-len", "32", "--stride", "16", "--windows", "3", "--no-speed"])  # fmt: skip
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["model"]
    lang = got["language"]
    assert (lang["windows"], lang["seq_len"], lang["stride"]) == (3, 32, 16)
    assert lang["tokens"] == 31 + 16 + 16  # first window: 31 scored; later ones: stride each
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    stream = load_text(DATASET, tokenizer=tok, split="evaluation")
    direct = perplexity(model, stream, seq_len=32, stride=16, max_windows=3, progress=False)
    assert got["perplexity"] == pytest.approx(direct.perplexity, rel=1e-9)
    assert "speed" not in lang


def test_evaluate_a_run_directory_compares_with_its_dense_model(
    ran: dict[str, Any], root: Path
) -> None:
    res = _invoke(["--json", "evaluate", "--model", str(root / "run"), "--no-speed"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["reference"]["source"] == str((root / "tiny").resolve())
    assert got["protocol"]["dataset"] == DATASET and got["protocol"]["windows"] == 4
    assert got["reference"]["perplexity"] == pytest.approx(ran["baseline"]["perplexity"], rel=1e-6)
    assert got["model"]["perplexity"] == pytest.approx(ran["pruned"]["perplexity"], rel=1e-6)
    assert got["model"]["agreement"] == pytest.approx(ran["pruned"]["agreement"], abs=1e-12)
    again = _invoke(["--json", "evaluate", str(root / "r.yaml"), "--model", str(root / "run"),
                     "--windows", "2", "--no-speed"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["model"]["language"]["windows"] == 2
    inner = _invoke(["--json", "evaluate", "--model", str(root / "run" / "model"),
                     "--windows", "1", "--no-speed"])  # fmt: skip
    assert inner.exit_code == 0, inner.output  # the run's model/ finds the run's settings
    assert json.loads(inner.stdout)["reference"]["source"] == got["reference"]["source"]


def test_distilled_run_interrupted_then_resumed_without_redoing_stages(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prunekit.pipeline.llm as llm_run

    real = llm_run.evaluate_language
    calls: list[int] = []

    def interrupt_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the pruned model's evaluation, after the distillation
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = str(root / "resumed")
    monkeypatch.setattr(llm_run, "evaluate_language", interrupt_second)
    res = _invoke(["prune", str(root / "d.yaml"), "--out", out, "--quiet"])
    assert res.exit_code == 130, res.output
    assert "interrupted during evaluate pruned" in res.output and "--resume" in res.output
    partial = json.loads((root / "resumed" / "metrics.json").read_text())
    assert partial["interrupted"]["finished"] == ["evaluate dense", "prune", "distill"]

    def redone(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(llm_run, "evaluate_language", real)
    monkeypatch.setattr(llm_run, "apply_steps", redone)
    monkeypatch.setattr(llm_run, "distill_stage", redone)
    res = _invoke(["--json", "prune", str(root / "d.yaml"), "--out", out, "--resume"])
    assert res.exit_code == 0, res.output
    assert "resumed: reused evaluate dense, prune, distill" in res.output.replace("\n", " ")
    got = json.loads(res.stdout)
    done = got["recovery"]
    assert (done["steps"], done["stopped_by"], done["tokens"]) == (2, "max_steps", 2 * 2 * 64)
    assert "logit distillation: 2 steps" in done["summary"] and "losses" not in done
    assert got["steps"][1]["removed_blocks"] and got["pruned"]["language"]["blocks"] == 3


def test_usage_errors_exit_2_and_name_the_valid_values(root: Path) -> None:
    res = _invoke(["evaluate"])
    assert res.exit_code == 2 and "--model NAME|DIR --data DATASET" in res.output
    res = _invoke(["evaluate", "--model", str(root / "tiny"), "--data", "nope"])
    assert res.exit_code == 2 and "'nope' is not a text dataset; valid: " in res.output
    res = _invoke(["evaluate", "--model", "smollm3", "--data", DATASET])
    assert res.exit_code == 2 and "neither a built-in language model (smollm2-135m" in res.output
    res = _invoke(["search", str(root / "r.yaml")])
    assert res.exit_code == 2 and "runs with `prunekit prune" in res.output
    bad = root / "bad.yaml"
    bad.write_text("kind: llm\nmodel: ./tiny\nprune: {method: depth, blokcs: 1}\n")
    res = _invoke(["prune", str(bad)])
    assert res.exit_code == 2 and "bad.yaml:3: prune.blokcs: unknown key 'blokcs'" in res.output


def test_regression_lower_is_better_headline_says_rise_not_gain() -> None:
    """A higher perplexity is a loss: the report's headline must not call it a gain."""
    rec = RunRecord(metric="perplexity", baseline={"perplexity": 10.0, "params": 100},
                    pruned={"perplexity": 12.5, "params": 80})  # fmt: skip
    assert headline(rec).startswith("perplexity 10 → 12.5 (a rise of 2.5)")


def test_evaluate_the_real_smollm2_on_shakespeare() -> None:
    res = _invoke(["--json", "evaluate", "--model", "smollm2-135m", "--data", "shakespeare",
                   "--seq-len", "64", "--windows", "2", "--no-speed"])  # fmt: skip
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["model"]
    assert got["params"] == 134_515_008 and got["language"]["tokens"] == 2 * 63
    assert 5.0 < got["perplexity"] < 200.0  # English text: neither random (49k) nor memorised
