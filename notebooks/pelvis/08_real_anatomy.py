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
# # Real anatomy: the phantom-trained detectors on a real pelvic CT
#
# ```{admonition} Real CT, simulated PET, inserted lesions
# :class: warning
# The CT is a real scan (a male abdomen and pelvis, TotalSegmentator's example case),
# untouched outside the lesions. The PET is **simulated** from its real organs (urine in
# the bladder, bowel, kidneys, blood pool, bone marrow, muscle, fat) with the phantom's
# scanner model; the tumour and nodes are **simulated lesions inserted** at the bladder
# base and beside the real iliac vessels. The patient is male: the "primary" sits where a
# cervical tumour meets the bladder, not in a cervix. Every hybrid patient shares this one
# anatomy, so the confidence intervals cover the lesion draws, PET noise and
# misregistration, not the variation between patients. Nothing here is clinical
# performance.
# ```
#
# The question: does what the detectors learnt on the phantom transfer to real anatomy and
# its real confounders (a real bladder, real bowel with its contents, the couch, real
# bone)? Nothing is trained or chosen on this cohort: each run keeps the operating
# confidence it chose on the phantom's validation patients. The comparisons between inputs
# are repeated here as exploratory results, outside the pre-specified family of the claims
# page.
#
# | step | our choice (`params.yaml`) |
# |---|---|
# | anatomy | `real_data.totalsegmentator`: fetched from PyPI, pinned by SHA-256, cut to the pelvis (`phantom.pelvis_real_anatomy.crop_structures`) |
# | PET | activity per real structure (`tissue_structures`, `organ_suv`; the rest as `phantom.pelvis`), the phantom's PSF, grid, counting noise and misregistration |
# | lesions | the phantom's tumour and node sizes, SUVmax and CT contrast; primary against the posterior wall of the lower bladder, nodes in fat or soft tissue beside the iliac vessels |
# | pipeline | ingestion, alignment and fusion of every slice, test export, detection and scoring exactly as for the phantom's locked test cohort |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
align_dir = "results/pelvis/align_fuse"
datasets_dir = "results/pelvis/datasets"
runs_dir = "results/pelvis/runs"
phantom_evaluation = "results/pelvis/evaluation"
out = "results/pelvis/real_anatomy"
metrics = "results/pelvis/metrics/real_anatomy.json"

# %%
from crossmodal.params import load_params
from crossmodal.stages.pelvis import real_anatomy

params = load_params(params_path, profile, study=study)
tables = real_anatomy.run(params, align_dir=align_dir, datasets_dir=datasets_dir, runs_dir=runs_dir, out=out,
                          metrics=metrics)

# %% tags=["hide-input"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.detection import differences_table
from crossmodal.report.detection import froc_table
from crossmodal.report.detection import qualitative_figure
from crossmodal.report.detection import shown_inputs
from crossmodal.report.detection import tested_on_sentence
from crossmodal.report.real_anatomy import cohort_sentence
from crossmodal.report.real_anatomy import provenance_sentence
from crossmodal.report.real_anatomy import transfer_table
from crossmodal.report.table import book_table

hybrid = params["phantom"]["pelvis_real_anatomy"]
display(Markdown(provenance_sentence(params["real_data"][hybrid["real_data"]]["root"])))
display(Markdown(cohort_sentence(tables["lesions"], len(tables["split"]), tables["alignment"])))
display(Markdown(tested_on_sentence(tables["metrics"], Path(out) / "datasets", params["detect"]["proposed"],
                                    learned=[d["name"] for d in params["detect"]["detectors"]])))

# %% [markdown]
# ## From the phantom to real anatomy
#
# Each run's AP50 of the primary class (the tumour) and averaged over the classes, on the
# phantom's locked test cohort and on the hybrid cohort, with 95 % patient-bootstrap CIs.

# %% tags=["hide-input"]
phantom = pd.read_csv(Path(phantom_evaluation) / "metrics.csv")
primary = params["detect"]["analysis"]["primary_class"]
for metric, what in [(f"AP50_{primary}", f"AP50 of the class {primary}"), ("AP50", "AP50 averaged over the classes")]:
    display(book_table(transfer_table(phantom, tables["metrics"], metric), name=f"tbl-real-{metric.lower()}".replace("_", "-"),
                       caption=f"{what} of every run on the phantom's locked test cohort and on the real-anatomy "
                               "cohort, 95 % patient-bootstrap CI.",
                       stage=f"real_anatomy_{study}", built_by=transfer_table, params=["phantom.pelvis_real_anatomy"],
                       data=[Path(phantom_evaluation) / "metrics.csv", Path(out) / "evaluation" / "metrics.csv"], keys=2))

# %% [markdown]
# ## Lesion-level FROC on real anatomy

# %% tags=["hide-input"]
display(book_table(froc_table(tables["metrics"]), name="tbl-real-froc",
                   caption="3-D lesion sensitivity on real anatomy at fixed false-positive findings per patient, and "
                           "false positives per patient at the matched sensitivity, per run, 95 % CI.",
                   stage=f"real_anatomy_{study}", built_by=froc_table,
                   params=["detect.evaluate.lesion_hit", "detect.analysis.matched_sensitivity"],
                   data=Path(out) / "evaluation" / "metrics.csv", keys=2, max_columns=6))

# %% [markdown]
# ## Paired differences on real anatomy: proposed input minus each other input
#
# Exploratory: not among the pre-specified comparisons, no multiplicity control.

# %% tags=["hide-input"]
display(book_table(differences_table(tables["differences"]), name="tbl-real-differences",
                   caption="Exploratory: proposed input minus each other input on real anatomy, per detector and "
                           "metric, paired patient-bootstrap 95 % CI.",
                   stage=f"real_anatomy_{study}", built_by=differences_table, params=["detect.proposed"],
                   data=Path(out) / "evaluation" / "differences.csv", max_columns=5))

# %% [markdown]
# ## Qualitative panel
#
# The real CT slice with the largest inserted lesion, its truth box (green) and the
# detections above each run's operating confidence (red), first detector and seed.

# %% tags=["hide-input"]
detector = params["detect"]["detectors"][0]["name"]
shown = shown_inputs(tables["metrics"], detector,
                     [params["detect"]["proposed"], *params["detect"]["analysis"]["claims"]["C1"]["references"]])

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-real-qualitative", "caption": "The real CT slice with the largest inserted lesion: truth (green) and detections above each run's phantom-chosen operating confidence (red). Stage `real_anatomy_pelvis`; drawn by {py:func}`crossmodal.report.detection.qualitative_figure`; params `detect.evaluate.operating_rule`; data: the runs' detections, at the operating confidences of {download}`metrics.csv <../../../results/pelvis/real_anatomy/evaluation/metrics.csv>`."}}
fig = qualitative_figure(Path(out) / "datasets", Path(out) / "runs", tables["metrics"], detector=detector,
                         inputs=shown, seed=int(params["detect"]["seeds"][0]))
plt.show()
