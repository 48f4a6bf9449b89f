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
# # Bone metastasis: the pre-specified analysis, then claimed versus reproduced (C5-C7)
#
# ```{admonition} Simulated data
# :class: warning
# The verdicts below are about the method on the simulated skeletal phantom, not about
# clinical performance.
# ```
#
# | step | thesis says | our choice (`params.yaml`, `classify.analysis`) |
# |---|---|---|
# | claims | C5 fused beats single modality (accuracy +7.9 %, AUC +8.5 %); C6 fused beats C3D; C7 better ROC and PR curves | one primary comparison per claim and comparator, on the claim's metric (table below) |
# | models | "several classifiers" | per feature set one model chosen by nested CV (inner AUC on the training patients only); the best classifier is never picked on the predictions that are scored |
# | patients | not stated | fused versus a single modality *like for like*: both trained and tested on the patients who have that modality; the fused model of all patients is reported beside it |
# | comparators | not stated | a modality is a comparator only when its detector works (AP50 CI lower bound >= `classify.gate.detector_ap50_ci_low`); an early-fusion model only when it passes its sanity gate (lesion presence from the `c3d.gate.modality` channel alone, AUC CI lower bound above chance); otherwise the row is **comparator not measurable** and keeps p = 1 in the family |
# | test | not stated | DeLong for AUC, paired patient bootstrap for PR-AUC; Holm across every primary comparison at `classify.claims.delong_alpha`; the verdict is read from the Holm-adjusted p: supported (below α, fused better), contradicted (below α, fused worse), inconclusive |
# | effect size | the percentages above, read as absolute differences | whether the thesis's value lies inside our CI |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
classify_dir = "results/skeleton/classify"
c3d_dir = "results/skeleton/c3d"
ap = "results/skeleton/evaluate/ap.csv"
out = "results/skeleton/claims"
metrics = None  # DVC metrics JSON, passed by dvc.yaml

# %% tags=["remove-output"]
from crossmodal.params import load_params
from crossmodal.stages.skeleton import claims

params = load_params(params_path, profile)
tables = claims.run(params, classify_dir=classify_dir, c3d_dir=c3d_dir, ap=ap, out=out,
                    metrics=metrics)

# %% [markdown]
# ## The pre-specified analysis
#
# Written in `params.yaml` (`classify.analysis`, `classify.gate`, `c3d.gate`) before any
# result and printed here before the results. The family size is the number of primary
# comparisons (claim × comparator).

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.claims import analysis_view
from crossmodal.report.skeleton.claims import beside_view
from crossmodal.report.skeleton.claims import c3d_difference_table
from crossmodal.report.skeleton.claims import choices_table
from crossmodal.report.skeleton.claims import claims_view
from crossmodal.report.skeleton.claims import early_fusion_sentence
from crossmodal.report.skeleton.claims import gate_view
from crossmodal.report.skeleton.claims import verdict_summary

pd.set_option("display.max_colwidth", 120)
display(analysis_view(tables["analysis"]))

# %% [markdown]
# ## Thesis says, our choice
#
# Every entry of the right-hand column is read from `params.yaml` (profile applied).

# %% tags=["hide-input"]
display(choices_table(params))

# %% [markdown]
# ## The gates
#
# Each modality's detector (evaluate stage): a modality whose detector does not find lesions
# is no comparator; "fused beats it" would measure a broken detector, not fusion.

# %% tags=["hide-input"]
display(gate_view(tables["detector_gate"]))

# %% [markdown]
# Late (feature) fusion versus early fusion: the nested fused model minus each early-fusion
# model (paired patient bootstrap), with whether that model passed its sanity gate (C3D
# chapter). Only one that passed is C6's comparator.

# %% tags=["hide-input"]
display(Markdown(early_fusion_sentence(tables["c3d_comparisons"])))
display(c3d_difference_table(tables["c3d_comparisons"]))

# %% [markdown]
# ## Claimed versus reproduced
#
# Thesis value as stated in its abstract; ours is *fused minus comparator* with its unadjusted
# CI, its p-value and the Holm-adjusted p-value the verdict is read from.

# %% tags=["hide-input"]
display(claims_view(tables["claims"], ci=params["classify"]["ci"]))
display(Markdown(verdict_summary(tables["summary"])))

# %% [markdown]
# ## Beside the claims
#
# The secondary metrics (C5: accuracy, the thesis's +7.9 %; C6: accuracy) and the fused model
# trained on all patients: CI, unadjusted p, no verdict.

# %% tags=["hide-input"]
display(beside_view(tables["beside"], ci=params["classify"]["ci"]))
