"""Process-parallel maps: order, errors, and each worker's share of the cores."""

from __future__ import annotations

import os

import pytest

from crossmodal.parallel import THREADS_VARIABLE
from crossmodal.parallel import map_jobs
from crossmodal.parallel import resolve_jobs


def square_or_fail(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is broken")
    return x * x


def worker_threads(_: int) -> str | None:
    return os.environ.get(THREADS_VARIABLE)


def test_results_come_back_in_input_order_on_several_processes():
    items = [5, 1, 4, 0, 2]
    assert map_jobs(square_or_fail, items, jobs=2) == [25, 1, 16, 0, 4]
    assert map_jobs(square_or_fail, items, jobs=1) == [25, 1, 16, 0, 4]
    assert map_jobs(square_or_fail, [], jobs=4) == []


def test_an_item_error_reaches_the_caller():
    with pytest.raises(ValueError, match="item 3 is broken"):
        map_jobs(square_or_fail, [1, 2, 3, 4], jobs=2)


def test_each_worker_gets_its_share_of_the_cores(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "4")  # this process may use 4 threads
    assert map_jobs(worker_threads, range(2), jobs=2) == ["2", "2"]


def test_job_counts(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "8")
    assert resolve_jobs("auto", 100) == 8
    assert resolve_jobs(None, 3) == 3  # never more processes than items
    assert resolve_jobs(2, 10) == 2
    with pytest.raises(ValueError, match=">= 1"):
        resolve_jobs(-1, 10)
