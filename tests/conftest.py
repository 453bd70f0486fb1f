"""Fixtures shared across the suite: a private cache, the command line, one torch thread."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never write to the user's ~/.cache: classifiers and features trained by the tests live in
    one folder of this session (shared by its tests and the processes they start)."""
    before = os.environ.get("AUTOPHAGY_CACHE")
    os.environ["AUTOPHAGY_CACHE"] = str(tmp_path_factory.mktemp("autophagy-cache"))
    yield
    if before is None:
        os.environ.pop("AUTOPHAGY_CACHE", None)
    else:
        os.environ["AUTOPHAGY_CACHE"] = before


@pytest.fixture
def cli() -> Callable[..., object]:
    """``cli("run", "--preset", ...)``: the ``autophagy`` command in this process, its result
    (``exit_code``, ``output``) returned."""
    from typer.testing import CliRunner

    from autophagy.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread: tiny networks gain nothing from two, and lose much on a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
