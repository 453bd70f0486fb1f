"""The gpt family: exact resume after a kill, a local pretrained folder, one-line refusals."""

import sys

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("transformers")

from killed import killed_at
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel  # noqa: E402

from autophagy.data import load_dataset  # noqa: E402
from autophagy.loop import EvalSettings, LoopSettings, run_cell  # noqa: E402
from autophagy.models import build_model  # noqa: E402
from autophagy.models.families.gpt import GPT  # noqa: E402
from autophagy.policies import parse_policy  # noqa: E402
from autophagy.signatures import ArgumentError  # noqa: E402
from autophagy.store import CellStore  # noqa: E402

torch.set_num_threads(1)
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "batch_size": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def blocks():
    return load_dataset("zipf", n_train=48, n_test=16, seed=0, vocab_size=30, block_len=8)


KilledAt = killed_at(GPT)  # a real gpt killed before a given fit trains


def test_a_gpt_cell_resumed_after_a_kill_equals_the_uninterrupted_one(blocks, tmp_path):
    loop = LoopSettings(3, seed=1, budget=128, initial_budget=256)
    ev = EvalSettings(metrics=("perplexity", "gen0_ppl", "types"), n_samples=16)
    options = {**TINY, "top_p": 0.95, "dropout": 0.1}
    whole = run_cell(GPT(**options), blocks, parse_policy("mixed:0.5"), loop, ev)
    store = CellStore(tmp_path / "cell")
    with pytest.raises(KeyboardInterrupt):
        run_cell(KilledAt(3, **options), blocks, parse_policy("mixed:0.5"), loop, ev,
                 store=store)
    assert store.generations_saved() == [0, 1]
    resumed = run_cell(GPT(**options), blocks, parse_policy("mixed:0.5"), loop, ev, store=store)
    assert resumed.status == "done"
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics)


def test_a_local_pretrained_folder_loads_through_init_checkpoint(blocks, tmp_path):
    torch.manual_seed(0)
    net = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=1,
                                     n_head=2, bos_token_id=35, eos_token_id=35))
    net.save_pretrained(tmp_path / "tiny")
    net.eval()
    model = build_model("gpt", {"init_checkpoint": str(tmp_path / "tiny"), "device": "cpu"})
    model.fit(blocks.train, budget=0, rng=np.random.default_rng(0))  # generation 0 as given
    ids = torch.as_tensor(blocks.test[:4])
    with torch.no_grad():
        ref = torch.log_softmax(net(torch.cat([torch.full((4, 1), 35), ids], 1)).logits, -1)
    expected = ref[:, :-1].gather(-1, ids[..., None])[..., 0].double().numpy()
    np.testing.assert_allclose(model.token_log_probs(blocks.test[:4]), expected, atol=1e-5)
    x = model.sample(4, rng=np.random.default_rng(0))
    assert x.shape == (4, 8) and x.max() < 40


def test_beam_search_continues_each_real_prefix(blocks):
    model = GPT(**TINY, num_beams=3, repetition_penalty=1.3, prompt_len=3)
    model.fit(blocks.train, budget=64, rng=np.random.default_rng(0))
    x = model.sample(5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x[:, :3], blocks.train[:5, :3])
    np.testing.assert_array_equal(x, model.sample(5, rng=np.random.default_rng(9)))  # no dice
    whole = GPT(**TINY, prompt_len=8, keep_prompt=False)  # Shumailov: the next block, alone
    whole.fit(blocks.train, budget=64, rng=np.random.default_rng(0))
    y = whole.sample(5, rng=np.random.default_rng(0))
    assert y.shape == (5, 8) and not (y == blocks.train[:5]).all()


def test_a_folder_that_is_not_a_causal_lm_is_refused_in_one_line(tmp_path):
    BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=16)).save_pretrained(
        tmp_path / "bert")
    with pytest.raises(ArgumentError, match=r"is a BertModel, not a causal language model"):
        build_model("gpt", {"init_checkpoint": str(tmp_path / "bert")})
    with pytest.raises(ArgumentError, match=r"^init_checkpoint: '.*nowhere' is not a folder"):
        GPT(init_checkpoint=str(tmp_path / "nowhere"))


def test_without_the_text_extra_the_family_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ArgumentError, match=r"^name: the gpt family needs transformers; "
                                            r"pip install 'autophagy\[text\]'$"):
        GPT()
