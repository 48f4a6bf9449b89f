"""Run independent pieces of work (patients, detector runs) on several processes.

Every piece is seeded on its own (patient index, case position, run seed), so results do
not depend on how many processes run them, nor on where: per-patient maps run either on
processes of this machine (``compute.backend: processes``) or as ``dask.distributed`` tasks
(``compute.backend: dask``) on an existing cluster (``compute.scheduler``) or on a
``LocalCluster``. A task whose worker dies is run again by the Dask scheduler (up to its
``allowed-failures``). ``params.yaml``'s ``compute`` section only changes how long a stage
takes, which is why no DVC stage lists it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

__all__ = ["DEVICE_VARIABLE", "Workers", "compute_setting", "cpu_threads", "device_names", "map_jobs",
           "patient_workers", "resolve_jobs"]

#: Set in each worker process: the CPU threads it may use (cores / processes).
THREADS_VARIABLE = "CROSSMODAL_THREADS"
#: Set in each worker process given ``worker_devices``: the device every item it runs uses.
DEVICE_VARIABLE = "CROSSMODAL_DEVICE"

# Libraries that size their thread pools from the environment when first loaded.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", THREADS_VARIABLE)


def cpu_threads() -> int:
    """CPU threads this process may use: its share when it is a worker, else every core."""
    value = os.environ.get(THREADS_VARIABLE)
    return max(1, int(value)) if value else max(1, os.cpu_count() or 1)


def compute_setting(params: dict, key: str) -> int | str:
    """``compute.<key>`` of the params; ``'auto'`` (every core) where a params file predates it."""
    return params.get("compute", {}).get(key, "auto")


@dataclass(frozen=True)
class Workers:
    """Where a map runs: ``jobs`` processes of this machine, or Dask workers.

    ``backend``: ``"processes"`` or ``"dask"``. With Dask, ``scheduler`` is the address of a
    running scheduler (``tcp://host:8786``; its workers must see the data on a shared
    filesystem) or ``None`` for a ``LocalCluster`` of ``jobs`` single-task workers.
    """

    jobs: int | str = 1
    backend: str = "processes"
    scheduler: str | None = None


def patient_workers(params: dict) -> Workers:
    """The ``compute`` section's workers for per-patient maps (phantom, ingestion, align +
    fuse, dataset export, scoring)."""
    compute = params.get("compute", {})
    return Workers(compute.get("jobs", "auto"), compute.get("backend", "processes"), compute.get("scheduler"))


def resolve_jobs(jobs: int | str | None, n_items: int, *, threads_per_job: int = 1) -> int:
    """``'auto'``/``None``/``0`` -> as many jobs as the cores hold at ``threads_per_job``
    each; always within ``[1, n_items]``."""
    if jobs in (None, "auto", 0, "0"):
        jobs = max(1, cpu_threads() // max(1, int(threads_per_job)))
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(f"compute jobs must be >= 1 or 'auto', got {jobs}")
    return max(1, min(jobs, n_items))


def device_names(devices: list[int | str]) -> list[str]:
    """A GPU index ``n`` as ``'cuda:n'`` (torch and ultralytics both read it); others unchanged."""
    return [f"cuda:{d}" if str(d).isdigit() else str(d) for d in devices]


def _thread_environment(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in _THREAD_VARIABLES}


def _start_worker(threads: int, devices: Any = None) -> None:
    os.environ.update(_thread_environment(threads))
    if devices is not None:  # this worker's own device, for every item it runs
        os.environ[DEVICE_VARIABLE] = devices.get()


def map_jobs(function: Callable[[Any], Any], items: Iterable[Any], *, jobs: int | str | Workers = 1,
             progress: bool = False, desc: str | None = None, unit: str = "item",
             worker_devices: list[int | str] | None = None,
             then: Callable[[Any], Any] | None = None) -> list[Any]:
    """``[function(item) for item in items]``, on ``jobs`` processes or the given
    :class:`Workers`, in input order.

    With ``then``, each item is ``then(function(item))``, run as a second task queued as
    soon as its first step ends, behind the first steps still waiting: so a slow first
    step (training) of the last items overlaps the second steps (prediction) of the
    first, where two steps in one task would leave workers idle in the last round.

    ``function`` must be picklable (a module-level function or a ``functools.partial`` of
    one). Workers are started fresh (``spawn``), each limited to its share of the cores,
    so no library state or thread pool is inherited. With ``worker_devices`` (processes
    only), worker ``k`` holds ``worker_devices[k % len]`` in ``DEVICE_VARIABLE`` for every
    item it runs, so no two items share a device while another sits idle. An item's error
    is raised here, after what is queued is cancelled (on Dask, the first error to arrive).
    """
    items = list(items)
    workers = jobs if isinstance(jobs, Workers) else Workers(jobs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit=unit)
    done = bar.update if bar is not None else (lambda: None)
    try:
        if workers.backend == "dask" and items:
            if worker_devices:
                raise ValueError("worker_devices needs compute.backend: processes")
            return _map_dask(function, items, workers, done, then)
        if workers.backend not in ("processes", "dask"):
            raise ValueError(f"compute.backend must be 'processes' or 'dask', got {workers.backend!r}")
        jobs = resolve_jobs(workers.jobs, len(items)) if items else 1
        return _map_processes(function, items, jobs, done, device_names(worker_devices or []), then)
    finally:
        if bar is not None:
            bar.close()


def _map_processes(function: Callable[[Any], Any], items: list[Any], jobs: int,
                   done: Callable[[], Any], devices: list[str],
                   then: Callable[[Any], Any] | None = None) -> list[Any]:
    if jobs == 1:
        with _device_of_this_process(devices[0] if devices else None):
            results = []
            for item in items:
                result = function(item)
                results.append(then(result) if then is not None else result)
                done()
            return results
    context = multiprocessing.get_context("spawn")
    slots = None
    if devices:
        slots = context.Queue()
        for k in range(jobs):
            slots.put(devices[k % len(devices)])
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                             initargs=(max(1, cpu_threads() // jobs), slots)) as pool:
        position = {pool.submit(function, item): k for k, item in enumerate(items)}
        first_steps = set(position) if then is not None else set()
        results: list[Any] = [None] * len(items)
        pending = set(position)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=position.get):
                    result = future.result()
                    if future in first_steps:  # queued behind the first steps not yet started
                        second = pool.submit(then, result)
                        position[second] = position[future]
                        pending.add(second)
                    else:
                        results[position[future]] = result
                        done()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # do not start what is queued
            raise
        return results


@contextlib.contextmanager
def _device_of_this_process(device: str | None):
    before = os.environ.get(DEVICE_VARIABLE)
    if device is not None:
        os.environ[DEVICE_VARIABLE] = device
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEVICE_VARIABLE, None)
        else:
            os.environ[DEVICE_VARIABLE] = before


def _map_dask(function: Callable[[Any], Any], items: list[Any], workers: Workers,
              done: Callable[[], Any], then: Callable[[Any], Any] | None = None) -> list[Any]:
    import dask
    from distributed import Client
    from distributed import LocalCluster
    from distributed import as_completed

    with contextlib.ExitStack() as stack:
        if workers.scheduler:
            client = stack.enter_context(Client(workers.scheduler))
        else:
            jobs = resolve_jobs(workers.jobs, len(items))
            # Non-daemonic workers, so a task may start processes of its own.
            stack.enter_context(dask.config.set({"distributed.worker.daemon": False}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
                memory_limit=0,  # no pausing or killing by share of RAM: a patient takes what it takes
                silence_logs=logging.ERROR,
                env=_thread_environment(max(1, cpu_threads() // jobs))))
            client = stack.enter_context(Client(cluster))
        futures = client.map(function, items, pure=False)
        if then is not None:  # each second step waits for its own first step only
            futures = client.map(then, futures, pure=False)
        for future in as_completed(futures):
            if future.status == "error":
                error = future.exception()
                client.cancel(futures)  # do not start what is queued
                raise error
            done()
        return client.gather(futures)
