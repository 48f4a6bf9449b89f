"""Run independent pieces of work (patients, detector runs) on several processes.

Every piece is seeded on its own (patient index, case position, run seed), so results do
not depend on how many processes run them; ``params.yaml``'s ``compute`` section only
changes how long a stage takes, which is why no DVC stage lists it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["compute_setting", "cpu_threads", "map_jobs", "resolve_jobs"]

#: Set in each worker process: the CPU threads it may use (cores / processes).
THREADS_VARIABLE = "CROSSMODAL_THREADS"

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


def resolve_jobs(jobs: int | str | None, n_items: int) -> int:
    """``'auto'``/``None``/``0`` -> every core; always within ``[1, n_items]``."""
    if jobs in (None, "auto", 0, "0"):
        jobs = cpu_threads()
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(f"compute jobs must be >= 1 or 'auto', got {jobs}")
    return max(1, min(jobs, n_items))


def _limit_threads(threads: int) -> None:
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)


def map_jobs(function: Callable[[Any], Any], items: Iterable[Any], *, jobs: int = 1,
             progress: bool = False, desc: str | None = None, unit: str = "item") -> list[Any]:
    """``[function(item) for item in items]``, on ``jobs`` processes, in input order.

    ``function`` must be picklable (a module-level function or a ``functools.partial`` of
    one). Workers are started fresh (``spawn``), each limited to its share of the cores,
    so no library state or thread pool is inherited. The first error raised by any item
    is raised here, after the pool shuts down.
    """
    items = list(items)
    jobs = resolve_jobs(jobs, len(items)) if items else 1
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit=unit)
    try:
        if jobs == 1:
            results = []
            for item in items:
                results.append(function(item))
                if bar is not None:
                    bar.update()
            return results
        threads = max(1, cpu_threads() // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_limit_threads,
                                 initargs=(threads,)) as pool:
            futures = [pool.submit(function, item) for item in items]
            results = []
            try:
                for future in futures:
                    results.append(future.result())
                    if bar is not None:
                        bar.update()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # do not start what is queued
                raise
            return results
    finally:
        if bar is not None:
            bar.close()
