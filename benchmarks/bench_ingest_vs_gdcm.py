"""Our DICOM reading against SimpleITK's GDCM series reader, per patient.

    python benchmarks/bench_ingest_vs_gdcm.py [--root data/pelvis-phantom] [--patients 12] [--repeats 3]

For each patient folder under ``--root`` (the embedded cohort by default), times

- ours: :func:`crossmodal.io.dicom.scan_dicom_tree` on the patient's folder, then
  :func:`crossmodal.io.dicom.read_series` of every series: the geometry checks (one
  orientation, no missing or duplicate slice, even spacing), per-slice rescale and PET
  SUV conversion included;
- GDCM: ``ImageSeriesReader.GetGDCMSeriesIDs`` and ``GetGDCMSeriesFileNames`` of every
  series folder, then ``ImageSeriesReader.Execute`` (no SUV, no checks beyond GDCM's
  sorting);

alternating which goes first, one thread, and checks that both give the same voxels for
CT (where the patient has a CT). Prints one JSON line: median seconds per patient of each, their ratio (target: at
most 1.2), and the slices per patient. Not a test; run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="data/pelvis-phantom")
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import SimpleITK as sitk

    from crossmodal.io.dicom import read_series
    from crossmodal.io.dicom import scan_dicom_tree

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    folders = sorted(p for p in Path(args.root).iterdir() if p.is_dir() and p.name not in {"labels", "truth"})
    folders = folders[: args.patients]

    def ours(folder: Path) -> dict:
        series, problems = scan_dicom_tree(folder)
        if problems:
            raise RuntimeError(f"{folder}: {problems[0]}")
        return {s.modality: read_series(s) for s in series}

    def gdcm(folder: Path) -> dict:
        images = {}
        for sub in sorted({p.parent for p in folder.rglob("*") if p.is_file()}):
            for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(sub)):
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(sub), uid))
                images[sub.name] = reader.Execute()
        return images

    times = {"ours": [], "gdcm": []}
    slices = []
    for i, folder in enumerate(folders):
        order = [("ours", ours), ("gdcm", gdcm)] if i % 2 == 0 else [("gdcm", gdcm), ("ours", ours)]
        for name, reader in order:
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                images = reader(folder)
                best = min(best, time.perf_counter() - start)
            times[name].append(best)
            if name == "ours":
                ours_images = images
            else:
                gdcm_images = images
        ct_gdcm = [v for k, v in gdcm_images.items() if "CT" in k.upper()]
        if "CT" in ours_images and ct_gdcm and not np.allclose(
                sitk.GetArrayFromImage(ours_images["CT"]), sitk.GetArrayFromImage(ct_gdcm[0]), atol=1e-3):
            raise RuntimeError(f"{folder}: CT voxels differ between the readers")
        slices.append(sum(image.GetSize()[2] for image in ours_images.values()))
    ours_s, gdcm_s = statistics.median(times["ours"]), statistics.median(times["gdcm"])
    print(json.dumps({"patients": len(folders), "slices_per_patient": statistics.median(slices),
                      "ours_seconds": round(ours_s, 4), "gdcm_seconds": round(gdcm_s, 4),
                      "ratio": round(ours_s / gdcm_s, 2), "target_ratio": 1.2,
                      "threads": 1, "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
