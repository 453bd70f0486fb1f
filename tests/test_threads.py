"""Threads for cells run in the caller's process (``run_loop``, the inline executor): pinned the
way a worker process pins its own while the cells run, and the caller's settings back after."""

from __future__ import annotations

import os

import pytest
import torch
from threadpoolctl import threadpool_info

import autophagy
from autophagy.config import load_config
from autophagy.errors import InputError
from autophagy.models import GaussianMLE
from autophagy.run.executors import InlineExecutor, make_executor
from autophagy.run.experiment import run_experiment
from autophagy.run.grid import expand_grid, make_batches
from autophagy.store import RunStore
from autophagy.threads import cores, pinned_threads, share

CALLER = 3  # neither 1 nor, on most machines, torch's default: a setting of the caller's own


def _pools() -> list[tuple[str, int]]:
    return sorted((p["filepath"], p["num_threads"]) for p in threadpool_info())


@pytest.fixture
def caller():
    """A caller that set its own torch threads and OMP_NUM_THREADS; put back after the test."""
    torch_before, env_before = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(CALLER)
    os.environ["OMP_NUM_THREADS"] = "5"
    yield _pools()
    torch.set_num_threads(torch_before)
    if env_before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env_before


class ThreadsSeen(GaussianMLE):
    """A plug-in model (GaussianMLE's maths) that notes torch's threads at every fit."""

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def fit(self, data, **kwargs):
        self.seen.append(torch.get_num_threads())
        return super().fit(data, **kwargs)


def _back_as_the_caller_left_them(pools) -> None:
    assert torch.get_num_threads() == CALLER
    assert os.environ["OMP_NUM_THREADS"] == "5"
    assert _pools() == pools  # every OpenMP and BLAS pool threadpoolctl sees


@pytest.mark.parametrize("threads", [1, 2])
def test_run_loop_pins_threads_for_the_cell_and_restores_the_callers(caller, threads):
    model = ThreadsSeen()
    df = autophagy.run_loop(model, "moons", "mixed:0.5", generations=2, seed=0, threads=threads,
                            metrics=["nll"], n_samples=100)
    assert set(df["generation"]) == {0, 1, 2}
    assert model.seen == [threads] * 3  # generation 0 and two fine-tunes, all pinned
    _back_as_the_caller_left_them(caller)


def test_run_loop_gives_one_cell_every_core_by_default_as_the_cli_does(caller):
    model = ThreadsSeen()
    autophagy.run_loop(model, "moons", "fully_synthetic", generations=1, metrics=["nll"],
                       n_samples=100)
    assert model.seen == [cores()] * 2 and share(1) == cores()
    _back_as_the_caller_left_them(caller)


def test_settings_come_back_when_the_cell_fails(caller):
    with pytest.raises(RuntimeError, match="boom"):
        with pinned_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    _back_as_the_caller_left_them(caller)


def test_bad_threads_fail_in_one_line_before_anything_runs(caller):
    model = ThreadsSeen()
    with pytest.raises(InputError, match=r"^threads must be an integer >= 1"):
        autophagy.run_loop(model, "moons", "mixed:0.5", generations=1, threads=0)
    assert model.seen == []
    _back_as_the_caller_left_them(caller)


def test_inline_executor_gives_a_workers_share_and_restores_the_callers(caller, tmp_path):
    config = load_config(preset="toy-gmm", overrides=[
        "data.n_train=120", "data.n_test=200", "seed=[0, 1]", "loop.generations=1",
        "loop.policies={mixed: {lambda: [0.5]}}", "eval.n_samples=100", "eval.metrics=[nll]",
        "eval.verdict_metric=nll", "model.options.n_components=2", "run.executor=inline",
    ])  # fmt: skip
    batches = make_batches(config, expand_grid(config))
    executor = make_executor(config, len(batches))
    assert isinstance(executor, InlineExecutor)
    # what each of the workers of the same run would get: cores // min(cores, batches)
    assert executor.threads == max(1, cores() // min(cores(), len(batches)))
    store = RunStore.create(tmp_path / "run", config.to_yaml())
    statuses = run_experiment(config, store)
    assert set(statuses.values()) == {"done"} and len(statuses) == 2
    _back_as_the_caller_left_them(caller)
