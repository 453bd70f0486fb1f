"""A text run end to end from the command line: tokenizer in the run directory, the gen-0
perplexity histograms in the report, and the one-line refusals of bad text before any run."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from autophagy.cli import app
from autophagy.data.text import decode

pytest.importorskip("tokenizers")
runner = CliRunner()


def _text(folder):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    path = folder / "story.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(words, 40)) + "." for _ in range(80)))
    return path


def _args(path, out, *extra):
    return ["run", "--preset", "text-ngram", "--set", "data.name=text",
            "--set", f"data.path={path}", "--set", "data.n_train=60", "--set", "data.n_test=10",
            "--set", "data.options.vocab_size=50", "--set", "data.options.block_len=16",
            "--set", "loop.generations=2", "--set", "seed=[0]", "--set", "eval.n_samples=40",
            "--set", "eval.metrics=[perplexity, types]",
            "--set", "loop.policies={fully_synthetic: {}}",
            *extra, "--out", str(out), "--quiet"]


def test_a_text_run_keeps_its_tokenizer_and_draws_the_gen0_histograms(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = runner.invoke(app, _args(_text(tmp_path), out))
    assert result.exit_code == 0, result.output
    assert "Verdicts on perplexity" in result.output
    tokenizer = (out / "tokenizer.json").read_text()
    samples = np.load(out / "cells" / "fully_synthetic-seed0" / "samples" / "gen_0002.npy")
    words = [w for text in decode(tokenizer, samples.astype(np.int64)) for w in text.split()]
    assert len(words) == samples.size
    assert all(re.fullmatch(r"w\d+|\.|<eos>|<unk>", w) for w in words)
    assert (out / "figures" / "gen0_perplexity.png").stat().st_size > 1000
    assert "under the generation-0 model" in (out / "report.html").read_text()
    again = runner.invoke(app, ["report", str(out)])  # the manifest vouches for tokenizer.json
    assert again.exit_code == 0, again.output
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"), (b"\x7fELF\x02\x01\x00\x00", "is a binary file, not text"),
])
def test_bad_text_stops_the_run_in_one_line_before_a_directory_exists(tmp_path, content,
                                                                       message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    result = runner.invoke(app, _args(path, tmp_path / "run"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: data.path: '{path}' {message}" +
                                                  result.output.strip().split(message, 1)[1]]
    assert not (tmp_path / "run").exists()


def test_a_vocabulary_larger_than_the_text_stops_the_run_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, _args(_text(tmp_path), tmp_path / "run", "--set",
                                      "data.options.vocab_size=500"))
    assert result.exit_code == 2
    assert result.output.startswith("error: data.options.vocab_size: 500 is larger than the ")
    assert len(result.output.strip().splitlines()) == 1
