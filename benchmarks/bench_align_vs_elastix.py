"""PET-to-CT alignment side by side: our default vs our previous schedule vs elastix's
default rigid map vs scanner geometry alone (issue #13, item 5).

    nice python benchmarks/bench_align_vs_elastix.py [--ingest results/pelvis/ingest]
        [--sets 0-11,12-23] [--old-sets 0-11,12-23]

Cases are the ingested Part 1 phantom cohort (read only; generated into a temporary
folder when ``--ingest`` does not exist). The residual error is the mean distance, over
5,000 CT body voxels, between where the estimated and the phantom's true misregistration
send each point (as in the align_fuse stage). Everything runs in this one process on one
thread (SimpleITK and ITK/elastix global thread counts set to 1); each method is warmed
up once (elastix's first call loads ITK) and the method order alternates per case.
``--sets``: case index ranges reported separately (choose on the first, confirm on the
rest). ``--old-sets``: where the slow previous schedule is also run.
Needs ``itk-elastix`` (the ``bench`` extra) for the elastix rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from crossmodal.imaging.register import mask_points_mm
from crossmodal.imaging.register import register_rigid
from crossmodal.imaging.register import transform_error_mm
from crossmodal.io.case import load_cases
from crossmodal.io.geometry import transform_from_dict
from crossmodal.params import load_params

# The SimpleITK schedule that was the default before the elastix engine was adopted.
OLD_SCHEDULE = {"engine": "sitk", "kind": "rigid", "metric": "mattes", "bins": 32, "sampling": 0.2,
                "iterations": 200, "learning_rate": 1.0, "min_step": 1.0e-3, "initialization": "center",
                "shrink_factors": [4, 2, 1], "smoothing_sigmas": [2.0, 1.0, 0.0],
                "ct_range": [-200.0, 300.0], "pet_range": [0.0, 5.0], "fov_margin_mm": 8.0,
                "seed": 0, "threads": 1}


def elastix_default(ct, pet, seed=0):
    """itk-elastix's default rigid parameter map on the raw images (no clipping, no mask)."""
    import itk

    from crossmodal.imaging.register import _elastix_transform
    from crossmodal.imaging.register import _to_itk

    maps = itk.ParameterObject.New()
    pmap = maps.GetDefaultParameterMap("rigid")
    pmap["RandomSeed"] = [str(seed + 1)]
    pmap["WriteResultImage"] = ["false"]
    maps.AddParameterMap(pmap)
    method = itk.ElastixRegistrationMethod.New(_to_itk(ct), _to_itk(pet))
    method.SetParameterObject(maps)
    method.SetLogToConsole(False)
    method.SetNumberOfThreads(1)
    method.UpdateLargestPossibleRegion()
    return _elastix_transform(method.GetTransformParameterObject().GetParameterMap(0))


def _methods(cfg, with_elastix):
    methods = {"ours (default)": lambda c: register_rigid(c.ct, c.pet, **cfg).transform,
               "ours (old schedule)": lambda c: register_rigid(c.ct, c.pet, **OLD_SCHEDULE).transform}
    if with_elastix:
        methods["elastix default rigid"] = lambda c: elastix_default(c.ct, c.pet)
    methods["geometry only"] = lambda c: sitk.Transform(3, sitk.sitkIdentity)
    return methods


def _ranges(text):
    out = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.append(list(range(int(lo), int(hi or lo) + 1)))
    return out


def _cases(ingest, needed, params):
    if Path(ingest).exists():
        return load_cases(ingest)
    from crossmodal.io.cohort import ingest_dicom_cohort
    from crossmodal.phantom.cohort import generate_pelvis_cohort

    tmp = Path(tempfile.mkdtemp())
    generate_pelvis_cohort({**params["phantom"]["pelvis"], "n_patients": needed}, tmp / "cohort")
    ingest_dicom_cohort(tmp / "cohort", tmp / "ingest", modalities=["CT", "PT"], salt="bench")
    return load_cases(tmp / "ingest")


def _table(title, rows, reference):
    print(f"\n{title}")
    print(f"{'method':24s} {'n':>3s} {'mean mm':>8s} {'median':>7s} {'max':>6s} {'med s':>6s} {'mean s':>7s}"
          f" {'med cpu s':>9s} {'err/ref':>7s} {'time/ref':>8s}")
    ref = rows.get(reference)
    for name, r in rows.items():
        e, t, cpu = np.array(r["err"]), np.array(r["wall"]), np.array(r["cpu"])
        ratio_e = e.mean() / np.mean(ref["err"]) if ref else float("nan")
        ratio_t = np.median(t) / np.median(ref["wall"]) if ref else float("nan")
        print(f"{name:24s} {len(e):3d} {e.mean():8.3f} {np.median(e):7.3f} {e.max():6.2f} {np.median(t):6.2f}"
              f" {t.mean():7.2f} {np.median(cpu):9.2f} {ratio_e:7.2f} {ratio_t:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", default="results/pelvis/ingest")
    parser.add_argument("--sets", default="0-11,12-23")
    parser.add_argument("--old-sets", default="0-11,12-23")
    args = parser.parse_args()
    params = load_params("params.yaml")
    cfg = params["align_fuse"]["register"]
    sets, old = _ranges(args.sets), {i for s in _ranges(args.old_sets) for i in s}
    cases = _cases(args.ingest, max(max(s) for s in sets) + 1, params)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        import itk

        itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(1)
        with_elastix = True
    except ImportError:
        with_elastix = False
    methods = _methods(cfg, with_elastix)
    for fn in methods.values():  # warm-up: library loading is not alignment time
        fn(cases[0])
    for set_no, idx in enumerate(sets):
        rows = {name: {"err": [], "wall": [], "cpu": []} for name in methods}
        for n, i in enumerate(idx):
            case = cases[i]
            truth = transform_from_dict(case.truth["misregistration"])
            body = sitk.BinaryThreshold(case.ct, -500.0, 1e9, 1, 0)
            points = mask_points_mm(body, max_points=5000, seed=0)
            order = list(methods) if n % 2 == 0 else list(reversed(methods))
            for name in order:
                if name == "ours (old schedule)" and i not in old:
                    continue
                wall, cpu = time.perf_counter(), time.process_time()
                transform = methods[name](case)
                rows[name]["wall"].append(time.perf_counter() - wall)
                rows[name]["cpu"].append(time.process_time() - cpu)
                rows[name]["err"].append(float(transform_error_mm(transform, truth, points).mean()))
        rows = {k: v for k, v in rows.items() if v["err"]}
        reference = "elastix default rigid" if with_elastix else "ours (old schedule)"
        _table(f"cases {idx[0]}-{idx[-1]} (ratios against {reference}; seconds per case, one thread)",
               rows, reference)


if __name__ == "__main__":
    main()
