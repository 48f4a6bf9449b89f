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
# # Detection metrics
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
# | metric | "average precision" | COCO AP50 and AP50-95 on the test patients (checked against pycocotools in the test suite); precision, recall, false positives per slice and lesion-level sensitivity at an operating confidence chosen on the validation patients (max F1) |
# | uncertainty | not stated | 95 % CI from a patient bootstrap; every run uses the same bootstrap draws, so differences between inputs are paired; several seeds, averaged within each draw |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
datasets_dir = "results/pelvis/datasets"
runs_dir = "results/pelvis/runs"
out = "results/pelvis/evaluation"
metrics = "results/pelvis/metrics/evaluate.json"

# %%
from crossmodal.params import load_params
from crossmodal.stages.pelvis import evaluate

params = load_params(params_path, profile)
tables = evaluate.run(params, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out, metrics=metrics)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import display

from crossmodal.report.detection import differences_table
from crossmodal.report.detection import metric_table
from crossmodal.report.detection import operating_table
from crossmodal.report.detection import pr_figure
from crossmodal.report.detection import qualitative_figure
from crossmodal.report.detection import shown_inputs

table = tables["metrics"]
inputs = params["detect"]["inputs"]

# %% [markdown]
# ## Average precision
#
# AP50 on the test patients, mean over seeds, with 95 % patient-bootstrap CI; one column
# per detector.

# %% tags=["hide-input"]
display(metric_table(table, "AP50", inputs=inputs))

# %% tags=["hide-input"]
display(metric_table(table, "AP50_95", inputs=inputs))

# %% [markdown]
# ## Precision–recall curves

# %% tags=["hide-input"]
fig = pr_figure(tables["pr_curves"], proposed=params["detect"]["proposed"])
plt.show()

# %% [markdown]
# ## Operating point: false positives, precision, recall, lesion sensitivity
#
# At the confidence chosen on the validation patients (max F1).

# %% tags=["hide-input"]
display(operating_table(table))

# %% [markdown]
# ## Qualitative panel
#
# Ground truth (green) and detections above the operating confidence (red) for the first
# detector, first seed, at the test slice with the largest lesion and at a hot lesion-free
# slice (the bladder on the phantom), for the proposed input and the single modalities.

# %% tags=["hide-input"]
detector = params["detect"]["detectors"][0]["name"]
shown = shown_inputs(table, detector, [params["detect"]["proposed"], *params["detect"]["claims"]["single_modality"]])
fig = qualitative_figure(Path(datasets_dir), Path(runs_dir), table, detector=detector, inputs=shown,
                         seed=int(params["detect"]["seeds"][0]))
plt.show()

# %% [markdown]
# ## Paired differences: proposed input minus each other input

# %% tags=["hide-input"]
display(differences_table(tables["differences"]))
