"""Same trained weights on any machine: fixed CPU kernels and fixed threads per training run.

Two seeded runs of one training on one machine give identical weights (see
:func:`crossmodal.detect.train.train_detector`). Across machines two more things change
float results: the CPU's instruction set, from which torch (ATen), oneDNN, MKL and
OpenBLAS each pick their fastest code path (measured here: AVX-512 and AVX2 kernels give
different weights after five SGD steps of a small conv net), and the number of threads
that sum a gradient. ``params.yaml``'s ``reproducibility`` section fixes both:

- ``cpu_kernels: avx2`` holds all four libraries to their AVX2 code path, which every
  x86-64 CPU since 2013-2015 has (``null``: each takes the fastest this CPU offers,
  faster on some machines, machine-specific weights);
- ``training_threads``: every CPU training run uses this many threads, whatever the
  machine's core count (more cores train more runs side by side instead).

The kernel choice is made when each library first loads, so it must be in a process's
environment before it starts: the ``crossmodal`` command sets it (:func:`pin_cpu_kernels`)
and every notebook kernel and worker process it starts inherits it.

The simulated input cohorts are always made on the AVX2 path (:data:`GENERATION_KERNELS`),
whatever ``cpu_kernels`` says: ``data.dvc`` records their bytes, which must be the same on
every machine. Measured: the pelvic phantom made on an AVX-512 Intel CPU with OpenBLAS's
own choice (its SkylakeX kernels) differs in the last digits of coordinates in its truth
sidecars from the one an AMD EPYC made; with OpenBLAS on its Haswell kernels the Intel
machine writes the AMD machine's tree byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CPU_KERNEL_VARIABLES", "GENERATION_KERNELS", "cpu_kernel_environment", "cpu_kernels_in_use",
           "file_kernels", "pin_cpu_kernels",
           "training_threads", "threads_for_training"]

#: Per kernel family: the variable each library reads at load time, and its value.
CPU_KERNEL_VARIABLES: dict[str, dict[str, str]] = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels
        "ONEDNN_MAX_CPU_ISA": "AVX2",  # torch's convolutions (oneDNN JIT)
        "MKL_CBWR": "AVX2",  # torch's matrix products (MKL conditional numerical reproducibility)
        "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and SciPy's BLAS (scikit-learn's solvers)
    },
}

_X86_64 = ("x86_64", "amd64")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_kernel_environment(kernels: str | None, *, machine: str | None = None,
                           cpu_flags: set[str] | None = None) -> dict[str, str]:
    """The environment variables that hold the CPU libraries to ``kernels`` (``'avx2'``).

    Empty for ``None`` (each library takes the fastest path it finds), on a CPU that is not
    x86-64 (the variables are x86 names) and on an x86-64 CPU without AVX2 (it cannot run
    those kernels; its weights then differ from an AVX2 machine's).
    """
    if kernels is None:
        return {}
    if kernels not in CPU_KERNEL_VARIABLES:
        raise ValueError(f"reproducibility.cpu_kernels must be one of {sorted(CPU_KERNEL_VARIABLES)} "
                         f"or null, got {kernels!r}")
    machine = (machine or platform.machine()).lower()
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    if machine not in _X86_64 or kernels not in flags:
        return {}
    return dict(CPU_KERNEL_VARIABLES[kernels])


#: The kernels the simulated cohorts are generated with (``crossmodal data``), on any machine.
GENERATION_KERNELS = "avx2"


def file_kernels(path: str | os.PathLike, profile: str | None = None) -> dict[str, Any]:
    """The ``reproducibility`` section of the params file at ``path`` (``profile``'s
    override over it), read as plain YAML: what :func:`pin_cpu_kernels` needs before
    validating the file loads NumPy. An unreadable file gives ``{}`` (validation reports it)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        name = profile or raw.get("profile")
        override = ((raw.get("profiles") or {}).get(name) or {}).get("reproducibility") or {}
        return {"reproducibility": {**(raw.get("reproducibility") or {}), **override}}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


def pin_cpu_kernels(params: Mapping[str, Any]) -> dict[str, str]:
    """Put ``reproducibility.cpu_kernels``'s variables into this process's environment.

    Call it before NumPy or torch is imported: processes started afterwards (notebook
    kernels, workers) inherit it. A variable the user set already is left alone. Returns
    the variables set.
    """
    kernels = params.get("reproducibility", {}).get("cpu_kernels")
    wanted = cpu_kernel_environment(kernels)
    added = {name: value for name, value in wanted.items() if name not in os.environ}
    os.environ.update(added)
    return added


def cpu_kernels_in_use() -> str:
    """torch's CPU kernel family in this process (``'AVX2'``, ``'AVX512'``, ...), for run records."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def training_threads(section: Mapping[str, Any]) -> int:
    """CPU threads of every training run: the ``reproducibility`` section's
    ``training_threads`` (default 1)."""
    threads = int(section.get("training_threads", 1))
    if threads < 1:
        raise ValueError(f"reproducibility.training_threads must be >= 1, got {threads}")
    return threads


@contextlib.contextmanager
def threads_for_training(threads: int | None) -> Iterator[None]:
    """torch and the trainers use exactly ``threads`` CPU threads inside the block
    (``None``: the process's own share, unchanged)."""
    if not threads:
        yield
        return
    import torch

    from crossmodal.parallel import THREADS_VARIABLE

    before, torch_before = os.environ.get(THREADS_VARIABLE), torch.get_num_threads()
    # ultralytics reads the variable (ultralytics_trainer), the other trainers torch's setting
    os.environ[THREADS_VARIABLE] = str(threads)
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        if before is None:
            os.environ.pop(THREADS_VARIABLE, None)
        else:
            os.environ[THREADS_VARIABLE] = before
