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
# | uncertainty | not stated | 95 % CI from a patient bootstrap; every run uses the same bootstrap draws, so differences between inputs are paired; the training seeds of `detect.seeds` (this profile's plan is printed on the training page) are averaged within each draw; with a single seed the CI covers patient sampling only, not a re-training |

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
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.detection import differences_table
from crossmodal.report.detection import froc_figure
from crossmodal.report.detection import froc_table
from crossmodal.report.detection import tested_on_sentence
from crossmodal.report.detection import metric_table
from crossmodal.report.detection import operating_table
from crossmodal.report.detection import pr_figure
from crossmodal.report.detection import qualitative_figure
from crossmodal.report.detection import shown_inputs

table = tables["metrics"]
inputs = params["detect"]["inputs"]
primary = params["detect"]["analysis"]["primary_class"]
display(Markdown(tested_on_sentence(table, datasets_dir, params["detect"]["proposed"],
                                    learned=[d["name"] for d in params["detect"]["detectors"]])))

# %% [markdown]
# ## Average precision per class
#
# The primary endpoint is AP50 of the primary class (`detect.analysis.primary_class`, the
# cervical tumour); every other class (the lymph nodes) is reported beside it, and AP50
# averaged over the classes below. On the test patients, mean over seeds, with 95 %
# patient-bootstrap CI; one column per detector. The column `suv_threshold` is the
# non-learned reference (`detect.reference`): every region above an SUV threshold, scored
# by its SUVmax, unless CT shows water (urine); it learns nothing, so a trained detector
# must beat it to have learnt more than the PET intensity tells.

# %% tags=["hide-input"]
for name in params["cohort"]["pelvis"]["label_names"].values():
    display(Markdown(f"**AP50, {name}**" + (" (primary endpoint)" if name == primary else "")))
    display(metric_table(table, f"AP50_{name}", inputs=inputs))

# %% tags=["hide-input"]
display(Markdown("**AP50, mean over classes**"))
display(metric_table(table, "AP50", inputs=inputs))

# %% tags=["hide-input"]
display(metric_table(table, "AP50_95", inputs=inputs))

# %% [markdown]
# ## Precision–recall curves

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-pr", "caption": "Precision–recall curves of every run on the test patients. Stage `evaluate_pelvis`; drawn by {py:func}`crossmodal.report.detection.pr_figure`; params `detect.evaluate`; data {download}`pr_curves.csv <../../../results/pelvis/evaluation/pr_curves.csv>`."}}
fig = pr_figure(tables["pr_curves"], proposed=params["detect"]["proposed"])
plt.show()

# %% [markdown]
# ## Lesion-level FROC
#
# A lesion is a 3-D connected component of the label; it is found at a confidence when a
# detection at or above it hits one of its slice boxes (`detect.evaluate.lesion_hit`).
# False positives are 3-D findings: detections that hit no lesion, joined when they
# overlap on the same or adjacent slices. Sensitivity at the usual FROC rates of
# false-positive findings per patient (the `sens_at_<rate>fp` columns), and the false positives per patient at the pre-specified matched
# sensitivity of the primary lesions (`detect.analysis.matched_sensitivity`, over the
# `primary_class` lesions; a detection on any other lesion is no false positive): claim C3
# compares inputs there.

# %% tags=["hide-input"]
display(froc_table(table))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-froc", "caption": "Lesion-level FROC: 3-D lesion sensitivity against false-positive findings per patient. Stage `evaluate_pelvis`; drawn by {py:func}`crossmodal.report.detection.froc_figure`; params `detect.evaluate.lesion_hit`; data {download}`froc_curves.csv <../../../results/pelvis/evaluation/froc_curves.csv>`."}}
fig = froc_figure(tables["froc_curves"], proposed=params["detect"]["proposed"])
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
shown = shown_inputs(table, detector, [params["detect"]["proposed"], *params["detect"]["analysis"]["claims"]["C1"]["references"]])

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-qualitative", "caption": "Truth (green) and detections above each run's operating confidence (red) at the largest-lesion test slice and a hot lesion-free slice. Stage `evaluate_pelvis`; drawn by {py:func}`crossmodal.report.detection.qualitative_figure`; params `detect.evaluate.operating_rule`; data: the runs' detections, at the operating confidences of {download}`metrics.csv <../../../results/pelvis/evaluation/metrics.csv>`."}}
fig = qualitative_figure(Path(datasets_dir), Path(runs_dir), table, detector=detector, inputs=shown,
                         seed=int(params["detect"]["seeds"][0]))
plt.show()

# %% [markdown]
# ## Paired differences: proposed input minus each other input
#
# Including the controls `[CT, PET, grey(X)]` (inputs named `ct_pet_<X>`), which share the
# proposed input's two modality channels: the difference to a control is the fusion rule's
# alone, the difference to the grey baseline X also the channel count's.

# %% tags=["hide-input"]
display(differences_table(tables["differences"]))
