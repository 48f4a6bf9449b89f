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
# | step | thesis says | our choice (`params.yaml`, section `detect`) |
# |---|---|---|
# | metric | "average precision" | COCO AP50 and AP50-95 on the test patients (checked against pycocotools in the test suite); precision, recall, false positives per slice and lesion-level sensitivity at an operating confidence chosen on the validation patients (max F1) |
# | uncertainty | not stated | 95 % CI from a patient bootstrap; every run uses the same bootstrap draws, so differences between inputs are paired; the training seeds of `detect.seeds` (this profile's plan is printed on the training page) are averaged within each draw; with a single seed the CI covers patient sampling only, not a re-training |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
datasets_dir = "results/pelvis/datasets"
runs_dir = "results/pelvis/runs"
out = "results/pelvis/evaluation"
metrics = "results/pelvis/metrics/evaluate.json"

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.params import study_cohort
from crossmodal.stages.pelvis import evaluate

tables = evaluate.run(params, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out, metrics=metrics)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt

from crossmodal.report.detection import differences_table
from crossmodal.report.detection import froc_figure
from crossmodal.report.detection import froc_table
from crossmodal.report.detection import tested_on_sentence
from crossmodal.report.detection import metric_table
from crossmodal.report.detection import operating_table
from crossmodal.report.detection import pr_figure
from crossmodal.report.detection import qualitative_figure
from crossmodal.report.detection import shown_inputs
from crossmodal.report.table import book_table

table = tables["metrics"]
inputs = params["detect"]["inputs"]
primary = params["detect"]["analysis"]["primary_class"]
display(Markdown(tested_on_sentence(table, datasets_dir, params["detect"]["proposed"],
                                    learned=[d["name"] for d in params["detect"]["detectors"]])))

# %% [markdown]
# ## Average precision per class
#
# The primary endpoint is AP50 of the primary class (`detect.analysis.primary_class`: the
# primary tumour); every other class (the lymph nodes, in the pelvis) is reported beside it, and AP50
# averaged over the classes below. On the test patients, mean over seeds, with 95 %
# patient-bootstrap CI; one column per detector. The column `suv_threshold` is the
# non-learned reference (`detect.reference`): every region above an SUV threshold, scored
# by its SUVmax, unless CT shows water (urine); it learns nothing, so a trained detector
# must beat it to have learnt more than the PET intensity tells.

# %% tags=["hide-input"]
for name in study_cohort(params)["label_names"].values():
    endpoint = " The primary endpoint." if name == primary else ""
    display(book_table(metric_table(table, f"AP50_{name}", inputs=inputs), name=f"tbl-ap50-{name}-{study}".replace("_", "-"),
                       caption=f"AP50 of the class {name} per input (rows) and detector (columns), test patients, "
                               f"mean over seeds, 95 % patient-bootstrap CI.{endpoint}",
                       stage=f"evaluate_{study}", built_by=metric_table, params=["detect.evaluate", "detect.inputs"],
                       data=f"{out}/metrics.csv"))

# %% tags=["hide-input"]
for metric, what in [("AP50", "AP50 averaged over the classes"), ("AP50_95", "COCO AP50-95 averaged over the classes")]:
    display(book_table(metric_table(table, metric, inputs=inputs), name=f"tbl-{metric.lower().replace('_', '-')}-mean-{study}",
                       caption=f"{what} per input and detector, test patients, mean over seeds, 95 % CI.",
                       stage=f"evaluate_{study}", built_by=metric_table, params=["detect.evaluate", "detect.inputs"],
                       data=f"{out}/metrics.csv"))

# %% [markdown]
# ## Precision–recall curves

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-pr-{{ study }}", "caption": "Precision–recall curves of every run on the test patients. Stage `evaluate_{{ study }}`; drawn by {py:func}`crossmodal.report.detection.pr_figure`; params `detect.evaluate`; data {download}`pr_curves.csv <../../../{{ out }}/pr_curves.csv>`."}}
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
display(book_table(froc_table(table), name=f"tbl-froc-{study}",
                   caption="3-D lesion sensitivity at fixed false-positive findings per patient (`sens_at_<rate>fp`) "
                           "and false positives per patient at the matched sensitivity, per run, 95 % CI.",
                   stage=f"evaluate_{study}", built_by=froc_table,
                   params=["detect.evaluate.lesion_hit", "detect.analysis.matched_sensitivity"],
                   data=f"{out}/metrics.csv", keys=2, max_columns=6))

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-froc-{{ study }}", "caption": "Lesion-level FROC: 3-D lesion sensitivity against false-positive findings per patient. Stage `evaluate_{{ study }}`; drawn by {py:func}`crossmodal.report.detection.froc_figure`; params `detect.evaluate.lesion_hit`; data {download}`froc_curves.csv <../../../{{ out }}/froc_curves.csv>`."}}
fig = froc_figure(tables["froc_curves"], proposed=params["detect"]["proposed"])
plt.show()

# %% [markdown]
# ## Operating point: false positives, precision, recall, lesion sensitivity
#
# At the confidence chosen on the validation patients (max F1).

# %% tags=["hide-input"]
display(book_table(operating_table(table), name=f"tbl-operating-{study}",
                   caption="Precision, recall, false positives per slice and lesion sensitivity at each run's "
                           "operating confidence (`conf`, max F1 on the validation patients), 95 % CI.",
                   stage=f"evaluate_{study}", built_by=operating_table, params=["detect.evaluate.operating_rule"],
                   data=f"{out}/metrics.csv", keys=2))

# %% [markdown]
# ## Qualitative panel
#
# Ground truth (green) and detections above the operating confidence (red) for the first
# detector, first seed, at the test slice with the largest lesion and at a hot lesion-free
# slice (the bladder, in the pelvis), for the proposed input and the single modalities.

# %% tags=["hide-input"]
detector = params["detect"]["detectors"][0]["name"]
shown = shown_inputs(table, detector, [params["detect"]["proposed"], *params["detect"]["analysis"]["claims"]["C1"]["references"]])

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-qualitative-{{ study }}", "caption": "Truth (green) and detections above each run's operating confidence (red) at the largest-lesion test slice and a hot lesion-free slice. Stage `evaluate_{{ study }}`; drawn by {py:func}`crossmodal.report.detection.qualitative_figure`; params `detect.evaluate.operating_rule`; data: the runs' detections, at the operating confidences of {download}`metrics.csv <../../../{{ out }}/metrics.csv>`."}}
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
display(book_table(differences_table(tables["differences"]), name=f"tbl-differences-{study}",
                   caption="Proposed input minus each other input, per detector and metric, paired patient "
                           "bootstrap 95 % CI.",
                   stage=f"evaluate_{study}", built_by=differences_table, params=["detect.proposed", "detect.evaluate"],
                   data=f"{out}/differences.csv", max_columns=5))
