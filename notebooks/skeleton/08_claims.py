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
from crossmodal.report.table import book_table

pd.set_option("display.max_colwidth", 120)
display(book_table(analysis_view(tables["analysis"]), name="tbl-skeleton-analysis",
                   caption="The pre-specified analysis, one column per claim: what the thesis says, the primary "
                           "metric and comparison, the models, the test, the thesis value, the secondary metric, "
                           "the comparator gate, α, the multiplicity correction and the family size.",
                   stage="claims_skeleton", built_by=analysis_view,
                   params=["classify.analysis", "classify.claims", "classify.gate", "classify.classifiers",
                           "classify.nested", "c3d.gate"],
                   data=f"{out}/analysis.csv", transpose=True))

# %% [markdown]
# ## Thesis says, our choice
#
# Every entry of the right-hand column is read from `params.yaml` (profile applied).

# %% tags=["hide-input"]
display(book_table(choices_table(params), name="tbl-skeleton-choices",
                   caption="Per step of Part 2: what the thesis says and our choice, every number of which is read "
                           "from `params.yaml`.",
                   stage="claims_skeleton", built_by=choices_table,
                   params=["cohort.skeleton", "phantom.skeleton.n_patients", "part2_detect.detector",
                           "part2_detect.scale", "part2_detect.tile_size", "part2_detect.slice_size",
                           "part2_detect.train.epochs", "part2_detect.negatives_per_positive",
                           "part2_detect.leakage", "part2_detect.n_folds", "part2_detect.holdout_fraction",
                           "features", "classify", "c3d"],
                   data=params_path))

# %% [markdown]
# ## The gates
#
# Each modality's detector (evaluate stage): a modality whose detector does not find lesions
# is no comparator; "fused beats it" would measure a broken detector, not fusion.

# %% tags=["hide-input"]
display(book_table(gate_view(tables["detector_gate"]), name="tbl-skeleton-detector-gate",
                   caption="Per modality: its detector's pooled AP50 with 95 % patient-bootstrap CI (evaluate stage), "
                           "the CI lower bound needed, and whether the modality is a comparator.",
                   stage="claims_skeleton", built_by=gate_view, params=["classify.gate.detector_ap50_ci_low"],
                   data=f"{out}/detector_gate.csv"))

# %% [markdown]
# Late (feature) fusion versus early fusion: the nested fused model minus each early-fusion
# model (paired patient bootstrap), with whether that model passed its sanity gate (C3D
# chapter). Only one that passed is C6's comparator.

# %% tags=["hide-input"]
display(Markdown(early_fusion_sentence(tables["c3d_comparisons"])))
display(book_table(c3d_difference_table(tables["c3d_comparisons"]), name="tbl-skeleton-early-fusion",
                   caption="Nested fused model (all patients) minus each early-fusion model, with whether that model "
                           "passed its sanity gate; AUC and accuracy, paired patient-bootstrap 95 % CI.",
                   stage="claims_skeleton", built_by=c3d_difference_table,
                   params=["classify.n_boot", "classify.ci", "classify.threshold", "c3d.gate"],
                   data=f"{out}/c3d_comparisons.csv", keys=2))

# %% [markdown]
# ## Claimed versus reproduced
#
# Thesis value as stated in its abstract; ours is *fused minus comparator* with its unadjusted
# CI, its p-value and the Holm-adjusted p-value the verdict is read from.

# %% tags=["hide-input"]
claim_params = ["classify.analysis", "classify.claims", "classify.gate", "classify.ci", "c3d.gate"]
display(book_table(claims_view(tables["claims"], ci=params["classify"]["ci"]), name="tbl-skeleton-claims",
                   caption="Claimed versus reproduced, one row per primary comparison (claim and comparator): the "
                           "thesis value, ours (fused minus comparator) with its unadjusted CI, p, Holm-adjusted p, "
                           "the verdict, whether the thesis value lies in our CI, and the comparator gate.",
                   stage="claims_skeleton", built_by=claims_view,
                   params=claim_params,
                   data=f"{out}/claims.csv", keys=2))
display(Markdown(verdict_summary(tables["summary"])))

# %% [markdown]
# ## Beside the claims
#
# The secondary metrics (C5: accuracy, the thesis's +7.9 %; C6: accuracy) and the fused model
# trained on all patients: CI, unadjusted p, no verdict.

# %% tags=["hide-input"]
display(book_table(beside_view(tables["beside"], ci=params["classify"]["ci"]), name="tbl-skeleton-beside-claims",
                   caption="Beside the claims: the secondary metrics and the fused model trained on all patients, per "
                           "claim, comparator and metric, with the thesis value, ours with its CI, the unadjusted p and "
                           "the comparator gate; no verdict.",
                   stage="claims_skeleton", built_by=beside_view,
                   params=claim_params,
                   data=f"{out}/beside.csv", keys=2))
