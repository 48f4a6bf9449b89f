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
# | step | thesis says | our choice (parameters in `params.yaml`, section `align_fuse`) |
# |---|---|---|
# | alignment | "cross-modal image alignment", "feature matching" | PET resampled onto the CT grid through patient coordinates, then a rigid Mattes mutual-information registration: elastix's default rigid map on intensity-clipped CT and PET (`align_fuse.register.engine`; SimpleITK's multi-resolution schedule is the alternative, as accurate at six times the time) |
# | enhancement | "image enhancement" of PET and CT | CT soft-tissue window to [0, 1]; PET SUV clipped and scaled to [0, 1]; CLAHE optional (off) |
# | ROI edge detection, adaptive localisation | body region by edge detection | one region per patient from Canny edges: front to back by the body outline's edges, side to side by the bones' edges (the bony pelvis, the ribs; CT bone window, maximum over the slices); a margin; crop and letterbox to the detector input (`align_fuse.localise`; `region: body` gives the older union box of the CT and PET body masks) |
# | fusion | "adaptive region feature fusion", channel-wise | `[CT, PET, F]`, F = w·PET + (1 − w)·CT, w rising with SUV above the region's Otsu threshold |
# | other fusions | "other PET-CT fusion methods" | weighted average, PCA, Laplacian pyramid, DWT, guided filtering (IFCNN and U2Fusion need weights that cannot be obtained: not reproduced) |
# | ablations | (not stated) | `[CT, PET, CT]`; no registration refinement; no ROI crop |
# | controls | (not stated) | every baseline also as `[CT, PET, grey(baseline)]`, the proposed input's channel layout, so that the channel count and the fusion rule are compared apart |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
ingest_dir = "results/pelvis/ingest"
out = "results/pelvis/align_fuse"
test_ingest_dir = None
test_out = None

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.stages.pelvis import align_fuse

tables = align_fuse.run(params, ingest_dir=ingest_dir, out=out, test_ingest_dir=test_ingest_dir, test_out=test_out)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt

from crossmodal.imaging.petct import lesion_stats
from crossmodal.report.align_fuse import inputs_figure
from crossmodal.report.align_fuse import load_figure_case
from crossmodal.report.align_fuse import region_summary
from crossmodal.report.align_fuse import registration_panel
from crossmodal.report.align_fuse import step_figure
from crossmodal.report.cohort import montage
from crossmodal.report.table import book_table

figure_case = load_figure_case(out)

# %% [markdown]
# ## Cohort lesions
#
# One row per case. Lesion slices are CT slices that contain any lesion voxel; lesions are
# 3-D connected components of the label. SUVmax is the hottest PET voxel inside the CT
# lesion label, with PET resampled onto the CT grid through the DICOM geometry only (before
# any registration). Where a lesion touches a hotter organ (the bladder, in the pelvis) it
# includes that organ's activity spilling into the label's edge (the PET blur on the coarser
# PET grid, the organ changing between CT and PET, the uncorrected misregistration), so it
# can exceed the lesion's own uptake: for a simulated cohort, `lesion_suvmax_simulated` is
# the highest uptake the simulation gave a lesion of the case (the phantom section's
# `tumour_suvmax` and `node_suvmax`, before blur and noise).

# %% tags=["hide-input"]
display(book_table(tables["lesion_summary"], name=f"tbl-lesion-summary-{study}",
                   caption="The cohort's slices and lesions: total over cases, median, quartiles and range per case.",
                   stage=f"align_fuse_{study}", built_by=align_fuse.describe_distribution, params=[f"cohort.{params['study']['cohort']}"],
                   data=f"{out}/lesion_summary.csv"))

# %% tags=["hide-input"]
display(book_table(tables["lesions"].drop(columns=["patient"]), name=f"tbl-lesions-{study}",
                   caption="One row per case: CT and PET slices, slices holding a lesion voxel, 3-D lesions, lesion "
                           "volume (ml), the hottest PET voxel in the lesion label on the CT grid and the highest "
                           "uptake the phantom gave a lesion.",
                   stage=f"align_fuse_{study}", built_by=lesion_stats, params=[f"cohort.{params['study']['cohort']}"],
                   data=f"{out}/lesions.csv"))

# %% [markdown]
# CT in the soft-tissue window, PET in SUV on the CT grid, their overlay, and the lesion
# label, at each shown case's largest lesion slice. The overlay uses scanner geometry only:
# the misregistration the phantom applies is still present (the steps below correct it).

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-montage-{{ study }}", "caption": "CT in the soft-tissue window, PET (SUV) on the CT grid, their overlay and the lesion label at each shown case's largest lesion slice, by scanner geometry only (before registration). Stage `align_fuse_{{ study }}`; drawn by {py:func}`crossmodal.report.cohort.montage`; params `cohort_report.ct_window`, `cohort_report.suv_display_max`, `cohort_report.montage_patients`; data {download}`lesions.csv <../../../{{ out }}/lesions.csv>`."}}
fig = montage(out, ct_window=params["cohort_report"]["ct_window"],
              suv_display_max=params["cohort_report"]["suv_display_max"])
plt.show()

# %% [markdown]
# ## One patient, step by step
#
# Raw CT and PET, the body contours, the Canny edges that define the localised region
# (the body outline's and the bones' inside the body; the region spans the body's edges
# front to back and the bones' edges side to side, over all slices), and the crop.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-steps-{{ study }}", "caption": "One patient step by step: raw CT and PET, body contours, the Canny edges that define the localised region, and the crop. Stage `align_fuse_{{ study }}`; drawn by {py:func}`crossmodal.report.align_fuse.step_figure`; params `align_fuse.localise`, `align_fuse.figure_case`; data {download}`region_check.csv <../../../{{ out }}/region_check.csv>`."}}
fig = step_figure(figure_case)
plt.show()

# %% [markdown]
# PET on the CT grid before (geometry only) and after the rigid refinement (the transform
# the stage saved under `transforms/`): overlay and CT/PET checkerboard.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-registration-{{ study }}", "caption": "PET on the CT grid before (scanner geometry) and after the rigid refinement: overlay and CT/PET checkerboard. Stage `align_fuse_{{ study }}`; drawn by {py:func}`crossmodal.report.align_fuse.registration_panel`; params `align_fuse.register`; data {download}`alignment.csv <../../../{{ out }}/alignment.csv>`."}}
registration_panel(figure_case)

# %% [markdown]
# Every detector input side by side (the three channels shown as RGB; green boxes are the
# lesion labels) at the largest lesion slice and at the hottest lesion-free slice (in the
# pelvis, the urinary bladder: the classic PET false positive).

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-inputs-{{ study }}", "caption": "Every detector input at the largest lesion slice and at the hottest lesion-free slice (three channels as RGB; green: lesion boxes). Stage `align_fuse_{{ study }}`; drawn by {py:func}`crossmodal.report.align_fuse.inputs_figure`; params `align_fuse.inputs`; data {download}`fusion_quality.csv <../../../{{ out }}/fusion_quality.csv>`."}}
fig = inputs_figure(figure_case)
plt.show()

# %% [markdown]
# ## Alignment error
#
# Mean distance (mm) over body voxels between where the estimated and the true CT→PET
# transform send each point; "before" is geometry only. Mean ± sd [95 % patient-bootstrap CI].

# %% tags=["hide-input"]
display(book_table(tables["alignment_summary"], name=f"tbl-alignment-{study}",
                   caption="Alignment error (mm) of the development cohort before (geometry only) and after the rigid "
                           "refinement, and the PET voxel size for scale: mean ± sd [95 % patient-bootstrap CI].",
                   stage=f"align_fuse_{study}", built_by=align_fuse.alignment_summary, params=["align_fuse.register"],
                   data=f"{out}/alignment_summary.csv"))

# %% [markdown]
# The locked test cohort is aligned and fused by the same code, on every slice of every
# volume (inference only), for the inputs some detector is tested on.

# %% tags=["hide-input"]
if "test_alignment_summary" in tables:
    display(Markdown(f"Locked test cohort: {len(tables['test_alignment'])} cases, "
                     f"{len(tables['test_slices'])} slices fused per input."))
    display(book_table(tables["test_alignment_summary"], name=f"tbl-alignment-test-{study}",
                       caption="Alignment error (mm) of the locked test cohort, as for the development cohort.",
                       stage=f"align_fuse_{study}", built_by=align_fuse.alignment_summary,
                       params=["align_fuse.register"], data=f"{test_out}/alignment_summary.csv"))

# %% [markdown]
# ## Localisation never cuts a lesion
#
# Lesion voxels inside the localised region, and the share of the slice the region keeps.

# %% tags=["hide-input"]
display(book_table(region_summary(tables["region_check"]), name=f"tbl-region-check-{study}",
                   caption="Lesion voxels of every case, those inside the localised region, and the mean share of "
                           "the slice the region keeps.",
                   stage=f"align_fuse_{study}", built_by=region_summary, params=["align_fuse.localise"],
                   data=f"{out}/region_check.csv"))

# %% [markdown]
# ## Fusion quality
#
# Per input: entropy (EN), standard deviation (SD), spatial frequency (SF), mutual
# information of the fused image with CT and with PET (bits), SSIM with CT and with PET,
# and Q^AB/F (Xydeas–Petrović). Three-channel inputs are reduced to their channel mean.
# Values are averaged per patient first; mean ± sd [95 % patient-bootstrap CI].

# %% tags=["hide-input"]
display(book_table(tables["fusion_quality_summary"], name=f"tbl-fusion-quality-{study}",
                   caption="Fusion quality per input: mean ± sd [95 % patient-bootstrap CI] over patients.",
                   stage=f"align_fuse_{study}", built_by=align_fuse.fusion_quality_summary, params=["align_fuse.inputs"],
                   data=f"{out}/fusion_quality_summary.csv", max_columns=4))
