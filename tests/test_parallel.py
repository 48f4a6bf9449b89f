"""Process-parallel maps: order, errors, and each worker's share of the cores."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import pytest

from crossmodal.parallel import DEVICE_VARIABLE
from crossmodal.parallel import THREADS_VARIABLE
from crossmodal.parallel import Workers
from crossmodal.parallel import map_jobs
from crossmodal.parallel import patient_workers
from crossmodal.parallel import resolve_jobs

DASK = Workers(2, "dask")  # a LocalCluster of two worker processes


def square_or_fail(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is broken")
    return x * x


def worker_threads(_: int) -> str | None:
    return os.environ.get(THREADS_VARIABLE)


def worker_device(_: int) -> str | None:
    time.sleep(0.3)  # long enough that every worker takes items
    return os.environ.get(DEVICE_VARIABLE)


def write_square_killing_the_worker_once(x: int, folder: Path) -> int:
    """Write ``x*x`` to ``folder/<x>.txt``; the first time item 2 runs, its worker process
    dies before writing (as a machine lost mid-task would)."""
    marker = folder / "killed-once"
    if x == 2 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    (folder / f"{x}.txt").write_text(str(x * x))
    return x * x


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


def test_dask_workers_give_the_same_results_in_input_order_and_raise_item_errors():
    items = [5, 1, 4, 0, 2]
    assert map_jobs(square_or_fail, items, jobs=DASK) == map_jobs(square_or_fail, items, jobs=2)
    with pytest.raises(ValueError, match="item 3 is broken"):
        map_jobs(square_or_fail, [1, 2, 3, 4], jobs=DASK)


def test_each_dask_worker_gets_its_share_of_the_cores(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "4")
    assert map_jobs(worker_threads, range(2), jobs=DASK) == ["2", "2"]


def test_a_task_whose_dask_worker_dies_is_rerun_and_the_outputs_are_complete(tmp_path):
    killed, reference = tmp_path / "dask", tmp_path / "processes"
    killed.mkdir(), reference.mkdir()
    items = list(range(6))
    results = map_jobs(functools.partial(write_square_killing_the_worker_once, folder=killed), items, jobs=DASK)
    assert (killed / "killed-once").exists()  # a worker did die mid-run
    (reference / "killed-once").touch()
    expected = map_jobs(functools.partial(write_square_killing_the_worker_once, folder=reference), items, jobs=2)
    assert results == expected == [x * x for x in items]
    assert sorted(p.name for p in killed.glob("*.txt")) == sorted(p.name for p in reference.glob("*.txt"))
    assert all((killed / p.name).read_text() == p.read_text() for p in reference.glob("*.txt"))


def first_step(x: int) -> dict:
    """A first step that takes long for the last item; fails for item 3."""
    if x == 3:
        raise ValueError(f"item {x} is broken in its first step")
    time.sleep(1.5 if x == 2 else 0.2)
    return {"item": x, "square": x * x, "first_ended": time.time()}


def second_step(record: dict) -> dict:
    if record["item"] == 4:
        raise ValueError("item 4 is broken in its second step")
    return {**record, "plus_one": record["square"] + 1, "second_started": time.time()}


@pytest.mark.parametrize("jobs", [1, 2, DASK], ids=["in-process", "processes", "dask"])
def test_a_second_step_follows_its_own_first_step_in_input_order(jobs):
    results = map_jobs(first_step, [2, 0, 1], jobs=jobs, then=second_step)
    assert [(r["item"], r["plus_one"]) for r in results] == [(2, 5), (0, 1), (1, 2)]
    assert all(r["second_started"] >= r["first_ended"] for r in results)
    for broken, step in ((3, "first"), (4, "second")):
        with pytest.raises(ValueError, match=f"item {broken} is broken in its {step} step"):
            map_jobs(first_step, [0, broken, 1], jobs=jobs, then=second_step)


def test_second_steps_overlap_a_slow_first_step_instead_of_waiting_for_it():
    # Two workers, first steps 0.2 s (items 0, 1) and 1.5 s (item 2): the second steps of
    # items 0 and 1 run on the worker item 2's first step leaves free, before it ends.
    slow, fast, other = map_jobs(first_step, [2, 0, 1], jobs=2, then=second_step)
    assert fast["second_started"] < slow["first_ended"]
    assert other["second_started"] < slow["first_ended"]


def test_compute_section_selects_the_backend():
    assert patient_workers({}) == Workers("auto", "processes", None)
    chosen = patient_workers({"compute": {"jobs": 3, "backend": "dask", "scheduler": "tcp://head:8786"}})
    assert chosen == Workers(3, "dask", "tcp://head:8786")
    with pytest.raises(ValueError, match="compute.backend"):
        map_jobs(square_or_fail, [1], jobs=Workers(1, "threads"))


def test_each_worker_holds_one_device_for_every_item_it_runs():
    assert map_jobs(worker_device, range(2), jobs=1, worker_devices=["mps"]) == ["mps", "mps"]
    assert os.environ.get(DEVICE_VARIABLE) is None  # restored after an in-process map
    devices = map_jobs(worker_device, range(6), jobs=2, worker_devices=[0, 1])
    assert sorted(set(devices)) == ["cuda:0", "cuda:1"]  # a GPU index is named as torch names it
    assert map_jobs(worker_device, range(2), jobs=2) == [None, None]


def test_job_counts(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "8")
    assert resolve_jobs("auto", 100) == 8
    assert resolve_jobs(None, 3) == 3  # never more processes than items
    assert resolve_jobs(2, 10) == 2
    assert resolve_jobs("auto", 100, threads_per_job=3) == 2  # as many as 8 cores hold at 3 threads
    assert resolve_jobs("auto", 100, threads_per_job=16) == 1
    assert resolve_jobs(4, 100, threads_per_job=3) == 4  # a number is taken as given
    with pytest.raises(ValueError, match=">= 1"):
        resolve_jobs(-1, 10)
