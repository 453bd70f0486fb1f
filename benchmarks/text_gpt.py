"""Tokens per second of the ``text-gpt`` preset's transformer: training, and sampling with and
without a key-value cache, on this CPU.

The preset's model (2 layers, 64 wide, 2,000 word types, blocks of 32) on its data (gensim's Lee
corpus), one process, one torch thread (as each worker of the ``processes`` executor), after a
warm-up. Sampling draws whole blocks at temperature 1 (``generate``), with ``use_cache`` on
(each step feeds one token and reuses the keys and values of the prefix) and off (each step
recomputes the whole prefix); ratios are against the cached sampler. The n-gram of
``text-ngram`` is timed beside it for scale.

    python benchmarks/text_gpt.py [--blocks 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from autophagy.config import load_config
from autophagy.data import load_dataset
from autophagy.models import build_model


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=256, help="blocks sampled per timing")
    parser.add_argument("--train-tokens", type=int, default=32_768)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(preset="text-gpt")
    d = config.data
    data = load_dataset(d.name, n_train=d.n_train, n_test=d.n_test, seed=0, **d.options)
    L = data.train.shape[1]
    rows = []
    model = build_model("gpt", {**config.model.options, "device": "cpu"})
    model.fit(data.train, budget=2048, rng=np.random.default_rng(0))  # warm-up
    dt = _timed(lambda: model.fit(data.train, warm_start=True, budget=args.train_tokens,
                                  rng=np.random.default_rng(1)))
    rows.append(("gpt: train (AdamW steps)", args.train_tokens / dt))
    n = args.blocks
    for cache in (True, False):
        model.use_cache = cache
        model.sample(8, rng=np.random.default_rng(0))  # warm-up
        dt = _timed(lambda: model.sample(n, rng=np.random.default_rng(2)))
        rows.append((f"gpt: sample, KV cache {'on' if cache else 'off'}", n * L / dt))
    dt = _timed(lambda: model.token_log_probs(data.test))
    rows.append(("gpt: score (one forward pass)", data.test.size / dt))
    ngram = build_model("ngram", load_config(preset="text-ngram").model.options).fit(data.train)
    dt = _timed(lambda: ngram.sample(4 * n, rng=np.random.default_rng(0)))
    rows.append(("ngram (bigram): sample", 4 * n * L / dt))

    reference = rows[1][1]
    table = Table(title=f"text-gpt model on this CPU (1 thread; {n} blocks of {L} tokens)")
    table.add_column("what")
    table.add_column("tokens/s", justify="right")
    table.add_column("x sampling with KV cache", justify="right")
    for what, rate in rows:
        table.add_row(what, f"{rate:,.0f}", f"{rate / reference:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
