"""Fixed CPU kernels and training threads (crossmodal.reproducible, the CLI's pin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossmodal.cli import app
from crossmodal.cli import record_wall_time
from crossmodal.reproducible import CPU_KERNEL_VARIABLES
from crossmodal.reproducible import cpu_kernel_environment
from crossmodal.reproducible import file_kernels
from crossmodal.reproducible import pin_cpu_kernels
from crossmodal.reproducible import threads_for_training
from crossmodal.reproducible import training_threads

REPO = Path(__file__).resolve().parents[1]
AVX2 = CPU_KERNEL_VARIABLES["avx2"]
HOST_HAS_AVX2 = bool(cpu_kernel_environment("avx2"))

# Five seeded SGD steps of a small conv net on one thread; prints torch's kernel family,
# OpenBLAS's core type and a hash of the weights.
TRAIN_A_LITTLE = """
import hashlib, json, numpy, threadpoolctl, torch
torch.manual_seed(0); torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 3),
                          torch.nn.Flatten(), torch.nn.Linear(8 * 28 * 28, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,))
for _ in range(5):
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest()
blas = [i.get("architecture") for i in threadpoolctl.threadpool_info() if i.get("internal_api") == "openblas"]
print(json.dumps({"kernels": str(torch.backends.cpu.get_cpu_capability()), "openblas": blas, "weights": digest}))
"""


def train_in_a_new_process(kernels: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in AVX2}
    env.update(cpu_kernel_environment(kernels))
    done = subprocess.run([sys.executable, "-c", TRAIN_A_LITTLE], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_avx2_environment_names_each_library_on_an_x86_64_cpu_with_avx2():
    assert cpu_kernel_environment(None) == {}
    on_x86 = cpu_kernel_environment("avx2", machine="x86_64", cpu_flags={"sse2", "avx2", "fma"})
    assert on_x86 == AVX2 and set(on_x86) == {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR",
                                              "OPENBLAS_CORETYPE"}
    # the x86 names mean nothing elsewhere, and a CPU without AVX2 cannot run those kernels
    assert cpu_kernel_environment("avx2", machine="aarch64", cpu_flags={"avx2"}) == {}
    assert cpu_kernel_environment("avx2", machine="x86_64", cpu_flags={"sse2", "avx"}) == {}
    with pytest.raises(ValueError, match="cpu_kernels"):
        cpu_kernel_environment("avx512")


def test_pinning_keeps_what_the_user_set(monkeypatch):
    if not HOST_HAS_AVX2:
        pytest.skip("this CPU has no AVX2: nothing is pinned on it")
    for name in AVX2:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    added = pin_cpu_kernels({"reproducibility": {"cpu_kernels": "avx2"}})
    assert added == {k: v for k, v in AVX2.items() if k != "MKL_CBWR"}
    assert os.environ["MKL_CBWR"] == "COMPATIBLE" and os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
    for name in AVX2:
        monkeypatch.delenv(name, raising=False)
    assert pin_cpu_kernels({"reproducibility": {"cpu_kernels": None}}) == {}
    assert not set(AVX2) & set(os.environ)


@pytest.mark.skipif(not HOST_HAS_AVX2, reason="this CPU has no AVX2: nothing is pinned on it")
def test_pinned_kernels_are_used_and_give_the_same_weights_run_after_run():
    first, second = train_in_a_new_process("avx2"), train_in_a_new_process("avx2")
    assert first["kernels"] == "AVX2" and first["openblas"] == ["Haswell"]
    assert first == second


@pytest.mark.skipif(not HOST_HAS_AVX2, reason="this CPU has no AVX2: nothing is pinned on it")
def test_the_cpu_s_own_fastest_kernels_train_other_weights():
    fastest = train_in_a_new_process(None)
    if fastest["kernels"] == "AVX2":
        pytest.skip("this CPU's fastest kernels are the AVX2 ones: the pin changes nothing here")
    # What a run on a CPU of another generation looks like without the pin: other weights.
    assert fastest["weights"] != train_in_a_new_process("avx2")["weights"]


def test_training_threads_are_the_params_and_restored_after_the_block():
    import torch

    from crossmodal.parallel import THREADS_VARIABLE

    assert training_threads({}) == 1
    assert training_threads({"training_threads": 3}) == 3
    with pytest.raises(ValueError, match="training_threads"):
        training_threads({"training_threads": 0})
    before, variable = torch.get_num_threads(), os.environ.get(THREADS_VARIABLE)
    with threads_for_training(1):
        assert torch.get_num_threads() == 1 and os.environ[THREADS_VARIABLE] == "1"
    assert torch.get_num_threads() == before and os.environ.get(THREADS_VARIABLE) == variable


@pytest.mark.skipif(not HOST_HAS_AVX2, reason="this CPU has no AVX2: nothing is pinned on it")
def test_the_cohorts_are_generated_on_the_same_kernels_whatever_the_params_say(tmp_path, monkeypatch):
    import crossmodal.stages.data as data_stage

    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in AVX2})
    seen = {}
    monkeypatch.setattr(data_stage, "run", lambda params, **_: seen.update(os.environ))
    text = (REPO / "params.yaml").read_text()
    assert "  cpu_kernels: null" in text  # the params leave the kernels free...
    result = CliRunner().invoke(app, ["data", "--params", str(REPO / "params.yaml"), "--no-dvc-add"])
    assert result.exit_code == 0, result.output
    assert {k: seen.get(k) for k in AVX2} == AVX2  # ...yet the generators run on the AVX2 path


def test_the_kernels_are_pinned_from_the_file_before_validation_loads_numpy(tmp_path):
    text = (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  cpu_kernels: null", "  cpu_kernels: avx2", 1))
    assert file_kernels(path)["reproducibility"]["cpu_kernels"] == "avx2"
    assert file_kernels(tmp_path / "missing.yaml") == {}
    # a fresh process: the NumPy that validation loads in the command itself must run on the
    # pinned BLAS kernels (OpenBLAS reads its variable when it loads)
    code = ("import sys, threadpoolctl; from crossmodal.cli import load_params; "
            f"load_params({str(path)!r}, None); assert 'numpy' in sys.modules; "
            "print(*sorted({i.get('architecture') for i in threadpoolctl.threadpool_info() "
            "if i.get('internal_api') == 'openblas'}))")
    env = {k: v for k, v in os.environ.items() if k not in AVX2}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    if HOST_HAS_AVX2:
        assert out.split() == ["Haswell"]


def test_the_params_reject_an_unknown_kernel_family(tmp_path):
    text = (REPO / "params.yaml").read_text()
    assert "  cpu_kernels: null" in text
    (tmp_path / "params.yaml").write_text(text.replace("  cpu_kernels: null", "  cpu_kernels: sse9", 1))
    result = CliRunner().invoke(app, ["stage", "ingest", "cohort=pelvis", f"out={tmp_path / 'x'}",
                                      "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 2 and "cpu_kernels" in result.output


def test_a_notebook_s_wall_time_is_recorded_outside_the_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = record_wall_time(Path("notebooks/pelvis/01_ingest.py"), tmp_path / "book" / "executed" / "a.ipynb",
                            12.345, "quick", timings_dir=Path(".timings"))
    assert path == Path(".timings/book__executed__a.ipynb.json")
    record = json.loads(path.read_text())
    assert record["output"] == "book/executed/a.ipynb" and record["seconds"] == 12.3
    assert record["profile"] == "quick" and record["finished"].endswith("+00:00")
    assert record_wall_time(Path("a.py"), tmp_path.parent / "elsewhere.ipynb", 1.0, None) is None
