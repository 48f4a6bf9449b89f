# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Alignment, localisation and fusion
#
# ```{admonition} Simulated data
# :class: warning
# All images are from the simulated pelvic PET/CT phantom (see the Cohort chapter).
# Alignment errors are measured against the misregistration the phantom applied.
# ```
#
# | step | thesis says | our choice (parameters in `params.yaml`, section `align_fuse`) |
# |---|---|---|
# | alignment | "cross-modal image alignment", "feature matching" | PET resampled onto the CT grid through patient coordinates, then a rigid Mattes mutual-information registration (SimpleITK, multi-resolution) |
# | enhancement | "image enhancement" of PET and CT | CT soft-tissue window to [0, 1]; PET SUV clipped and scaled to [0, 1]; CLAHE optional (off) |
# | ROI edge detection, adaptive localisation | body region by edge detection | body contour per slice (CT threshold, PET Otsu), Canny edges shown; one union box with margin per patient; crop and letterbox |
# | fusion | "adaptive region feature fusion", channel-wise | `[CT, PET, F]`, F = w·PET + (1 − w)·CT, w rising with SUV above the region's Otsu threshold |
# | other fusions | "other PET-CT fusion methods" | weighted average, PCA, Laplacian pyramid, DWT, guided filtering (IFCNN and U2Fusion need weights that cannot be obtained: not reproduced) |
# | ablations | (not stated) | `[CT, PET, CT]`; no registration refinement; no ROI crop |

# %% tags=["parameters"]
params_path = "params.yaml"
ingest_dir = "results/pelvis/ingest"
align_dir = "results/pelvis/align_fuse"
out_dir = "results/pelvis/align_fuse_report"

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import SimpleITK as sitk
from IPython.display import display

from crossmodal.io import load_cases
from crossmodal.params import load_params
from crossmodal.part1 import alignment_summary
from crossmodal.part1 import fusion_quality_summary
from crossmodal.part1 import inputs_figure
from crossmodal.part1 import lesion_and_hot_slices
from crossmodal.part1 import prepare
from crossmodal.part1 import region_summary
from crossmodal.part1 import step_figure
from crossmodal.imaging.register import registration_figure
from crossmodal.imaging.register import resample_to_reference

params = load_params(params_path)
cfg = params["align_fuse"]
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
cases = load_cases(ingest_dir)
case = cases[min(int(cfg["figure_case"]), len(cases) - 1)]
prepared, transform = prepare(case, cfg)
lesion_z, hot_z = lesion_and_hot_slices(prepared)

# %% [markdown]
# ## One patient, step by step
#
# Raw CT and PET, the body contours and Canny edges that define the localised region,
# and the crop.

# %% tags=["hide-input"]
fig = step_figure(prepared, sitk.GetArrayFromImage(case.pet), lesion_z)
fig.savefig(out / "steps.png", dpi=100)
plt.show()

# %% [markdown]
# PET on the CT grid before (geometry only) and after the rigid refinement: overlay and
# CT/PET checkerboard.

# %% tags=["hide-input"]
fig = registration_figure(case.ct, resample_to_reference(case.pet, case.ct),
                          resample_to_reference(case.pet, case.ct, transform=transform), z=lesion_z)
fig.savefig(out / "registration.png", dpi=100)
plt.show()

# %% [markdown]
# Every detector input side by side (the three channels shown as RGB; green boxes are the
# lesion labels) at the largest lesion slice and at the hottest lesion-free slice, which
# on the phantom is the urinary bladder: the classic PET false positive.

# %% tags=["hide-input"]
zs = {f"lesion slice {lesion_z}": lesion_z}
if hot_z is not None:
    zs[f"hot lesion-free slice {hot_z}"] = hot_z
fig = inputs_figure(prepared, cfg["inputs"], zs, size=int(cfg["image_size"]), options=cfg["method_options"])
fig.savefig(out / "inputs.png", dpi=100)
plt.show()

# %% [markdown]
# ## Alignment error
#
# Mean distance (mm) over body voxels between where the estimated and the true CT→PET
# transform send each point; "before" is geometry only. Mean ± sd [95 % patient-bootstrap CI].

# %% tags=["hide-input"]
alignment = alignment_summary(pd.read_csv(Path(align_dir) / "alignment.csv"), seed=int(cfg["seed"]))
alignment.to_csv(out / "alignment_summary.csv")
display(alignment)

# %% [markdown]
# ## Localisation never cuts a lesion
#
# Lesion voxels inside the localised region, and the share of the slice the region keeps.

# %% tags=["hide-input"]
display(region_summary(pd.read_csv(Path(align_dir) / "region_check.csv")))

# %% [markdown]
# ## Fusion quality
#
# Per input: entropy (EN), standard deviation (SD), spatial frequency (SF), mutual
# information of the fused image with CT and with PET (bits), SSIM with CT and with PET,
# and Q^AB/F (Xydeas–Petrović). Three-channel inputs are reduced to their channel mean.
# Values are averaged per patient first; mean ± sd [95 % patient-bootstrap CI].

# %% tags=["hide-input"]
quality_summary = fusion_quality_summary(pd.read_csv(Path(align_dir) / "fusion_quality.csv"), seed=int(cfg["seed"]))
quality_summary.to_csv(out / "fusion_quality_summary.csv")
display(quality_summary)
