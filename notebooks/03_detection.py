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
# # Lesion detection and claims C1–C4
#
# ```{admonition} Simulated data
# :class: warning
# Detectors are trained and tested on the simulated pelvic PET/CT phantom. The numbers
# test whether the thesis's comparisons hold on data with a known truth; they are not
# clinical performance.
# ```
#
# | step | thesis says | our choice (`params.yaml`, section `detect`) |
# |---|---|---|
# | detectors | several object detectors, fused input fed channel-wise | ultralytics YOLOv5u, YOLOv8, YOLO11 (nano) and torchvision Faster R-CNN (ResNet-18 FPN), all trained from scratch: no pretrained weights can be downloaded |
# | data | 220 patients, 72,602 slices | the simulated cohort; lesion slices plus sampled negatives, hot lesion-free (bladder) slices always kept |
# | split | not stated | one stratified patient-level train/val/test split, shared by every input, so all comparisons are paired |
# | metric | "average precision" | COCO AP50 and AP50-95 on the test patients (checked against pycocotools in the test suite); precision, recall, false positives per slice and lesion-level sensitivity at an operating confidence chosen on the validation patients (max F1) |
# | uncertainty | not stated | 95 % CI from a patient bootstrap; every run uses the same bootstrap draws, so differences between inputs are paired; several seeds, averaged within each draw |
# | verdict | – | supported if the CI of the difference lies above 0, contradicted if below, inconclusive otherwise |

# %% tags=["parameters"]
params_path = "params.yaml"
align_dir = "results/pelvis/align_fuse"
datasets_dir = "results/pelvis/datasets"
runs_dir = "results/pelvis/runs"
eval_dir = "results/pelvis/evaluation"
out_dir = "results/pelvis/detection_report"

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.part1_detect import claims_view
from crossmodal.part1_detect import differences_table
from crossmodal.part1_detect import metric_table
from crossmodal.part1_detect import operating_table
from crossmodal.part1_detect import pr_figure
from crossmodal.part1_detect import qualitative_figure
from crossmodal.part1_detect import runs_summary

params = load_params(params_path)
cfg = params["detect"]
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
metrics = pd.read_csv(Path(eval_dir) / "metrics.csv")
differences = pd.read_csv(Path(eval_dir) / "differences.csv")
claims = pd.read_csv(Path(eval_dir) / "claims.csv")
split = pd.read_csv(Path(datasets_dir) / "split.csv")
runs = pd.read_csv(Path(runs_dir) / "runs.csv")


display(Markdown(
    f"Profile **{params['profile']}**: patients per split "
    + ", ".join(f"{k} {v}" for k, v in split["split"].value_counts().items())
    + f"; seeds {cfg['seeds']}; " + runs_summary(runs)
))

# %% [markdown]
# ## Average precision
#
# AP50 on the test patients, mean over seeds, with 95 % patient-bootstrap CI; one column
# per detector.

# %% tags=["hide-input"]
ap_table = metric_table(metrics, "AP50", inputs=cfg["inputs"])
ap_table.to_csv(out / "ap50_table.csv")
display(ap_table)

# %% tags=["hide-input"]
display(metric_table(metrics, "AP50_95", inputs=cfg["inputs"]))

# %% [markdown]
# ## Precision–recall curves

# %% tags=["hide-input"]
curves = pd.read_csv(Path(eval_dir) / "pr_curves.csv")
fig = pr_figure(curves)
fig.savefig(out / "pr_curves.png", dpi=100)
plt.show()

# %% [markdown]
# ## Operating point: false positives, precision, recall, lesion sensitivity
#
# At the confidence chosen on the validation patients (max F1).

# %% tags=["hide-input"]
operating = operating_table(metrics)
operating.to_csv(out / "operating_point.csv", index=False)
display(operating)

# %% [markdown]
# ## Qualitative panel
#
# Ground truth (green) and detections above the operating confidence (red) for the first
# detector, seed 0, at the test slice with the largest lesion and at a hot lesion-free
# slice (the bladder on the phantom), for the proposed input and the single modalities.

# %% tags=["hide-input"]
slices = pd.read_csv(Path(align_dir) / "slices.csv")
hot = {(r.case_id, int(r.z)) for r in slices[slices.hot_negative].itertuples()}
detector = cfg["detectors"][0]["name"]
shown = [n for n in [cfg["proposed"], *cfg["claims"]["single_modality"]]
         if ((metrics.detector == detector) & (metrics.input == n)).any()]
fig = qualitative_figure(Path(datasets_dir), Path(runs_dir), metrics, detector=detector, inputs=shown,
                         hot_negatives=hot, seed=int(cfg["seeds"][0]))
fig.savefig(out / "qualitative.png", dpi=100)
plt.show()

# %% [markdown]
# ## Paired differences: proposed input minus each other input

# %% tags=["hide-input"]
display(differences_table(differences))

# %% [markdown]
# ## Claimed vs reproduced (C1–C4)
#
# The thesis's numbers are absolute AP differences read from its abstract; ours are the
# AP50 differences (or false positives per slice for C3) with their 95 % CI. Verdicts are
# computed from the CIs.

# %% tags=["hide-input"]
claims_shown = claims_view(claims)
claims_shown.to_csv(out / "claims_table.csv", index=False)
display(claims_shown)

# %% tags=["hide-input"]
n_test = int((split["split"] == "test").sum())
display(Markdown(
    f"These verdicts rest on **{n_test} test patients** and **{len(cfg['seeds'])} seed(s)** per "
    "configuration. The bootstrap CI covers patient sampling, not the spread between training "
    "runs: with a single seed, a re-run on another machine (other thread counts, other float "
    "rounding) can move a difference across zero. The `full` profile trains several seeds on "
    "the thesis-sized cohort."
))
