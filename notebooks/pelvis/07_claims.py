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
# # Claims C1–C4: the pre-specified analysis, then claimed vs reproduced
#
# | step | thesis says | our choice (`params.yaml`, `detect.analysis`) |
# |---|---|---|
# | claims | C1 mean AP +6.06 % over single modality; C2 +8.9 % over other fusion methods; C3 fewer false positives; C4 consistent across detectors | one primary comparison per claim and detector: the proposed input minus the claim's reference, on the claim's metric (table below) |
# | primary endpoint | "mean AP" (classes and IoU not stated) | AP50 of the primary class (the tumour); the other class and the class-mean AP50 are reported beside it, without verdict |
# | reference | "single modality", "other fusion methods" | among the claim's reference inputs, the best on the **validation** patients; the test patients never choose |
# | false positives | "fewer" | false positives per patient at a matched 3-D sensitivity for the primary lesion (FROC; `matched_sensitivity`) |
# | test | not stated | paired patient bootstrap on the test patients: difference with its 95 % CI and a two-sided bootstrap p-value |
# | multiplicity | not stated | Holm across the family of every primary comparison (claim × detector); a verdict is read from the adjusted p-value: supported (below α, better side), contradicted (below α, worse side), inconclusive, or not measurable (no finite difference, e.g. the FROC never reached the matched sensitivity; or one of the two runs failed the sanity gate on the validation patients, `detect.analysis.gate`, and then keeps p = 1 in the family) |
# | C4 when a row is not measurable | — | not measurable: a comparison nobody could measure does not count as agreeing |
# | effect size | the percentages above | whether the thesis's value lies inside our 95 % CI, under the reading stated below (ours, not the thesis's) |
# | C4 | "consistent" | computed: C1 and C2 supported for every detector; not measurable with fewer than two detectors |
#
# The claims are the thesis's, asked of this page's study (`detect.analysis.claims`, which a
# study other than the thesis's sets in `studies.<study>.sections`, with no thesis value to
# compare where the thesis did not study that cancer).

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
eval_dir = "results/pelvis/evaluation"
out = "results/pelvis/claims"
metrics = "results/pelvis/metrics/claims.json"

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %% tags=["remove-output"]
from crossmodal.stages.pelvis import claims

table = claims.run(params, eval_dir=eval_dir, out=out, metrics=metrics)

# %% [markdown]
# ## The pre-specified analysis
#
# Written in `params.yaml` (`detect.analysis`) before any detector was trained and printed
# here before any result. The family size is the number of primary comparisons this
# profile's runs allow (claim × detector).

# %% tags=["hide-input"]
import pandas as pd

from crossmodal.report.claims import analysis_view
from crossmodal.report.claims import beside_view
from crossmodal.report.claims import claims_view
from crossmodal.report.claims import reading_sentence
from crossmodal.report.claims import verdict_caveat
from crossmodal.report.table import book_table

display(book_table(analysis_view(pd.read_csv(f"{out}/analysis.csv")), name=f"tbl-analysis-{study}",
                   caption="The pre-specified analysis of claims C1–C4: endpoint, reference choice, test, family and "
                           "the rule a verdict is read by.",
                   stage=f"claims_{study}", built_by=analysis_view, params=["detect.analysis"], data=f"{out}/analysis.csv"))
display(Markdown(reading_sentence(params["detect"]["analysis"]["thesis_reading"])))

# %% [markdown]
# ## Claimed vs reproduced (C1–C4)
#
# Thesis value as stated in its abstract; ours is the difference *proposed minus the chosen
# reference* on the test patients, with its unadjusted 95 % CI, its two-sided bootstrap
# p-value and the Holm-adjusted p-value the verdict is read from. For C3 a negative
# difference (fewer false positives) is the improvement.

# %% tags=["hide-input"]
display(book_table(claims_view(table), name=f"tbl-claims-{study}",
                   caption="Claims C1–C4, thesis value against ours: proposed minus the chosen reference on the test "
                           "patients, unadjusted 95 % CI, bootstrap p-value, Holm-adjusted p-value and verdict.",
                   stage=f"claims_{study}", built_by=claims_view, params=["detect.analysis"], data=f"{out}/claims.csv",
                   keys=2))

# %% tags=["hide-input"]
display(Markdown(verdict_caveat(int(table["test_patients"].iloc[0]), int(table["seeds"].min()))))

# %% [markdown]
# ## Beside the claims: secondary endpoints and controls
#
# The other class's AP50 and the class-mean AP50 at each claim's chosen reference, and the
# controls named in `detect.analysis.controls` (proposed minus each). Outside the family:
# unadjusted p-values, no verdict.

# %% tags=["hide-input"]
display(book_table(beside_view(pd.read_csv(f"{out}/beside.csv")), name=f"tbl-beside-{study}",
                   caption="Secondary endpoints and controls beside the claims: proposed minus each, 95 % CI, "
                           "unadjusted p-value, no verdict.",
                   stage=f"claims_{study}", built_by=beside_view, params=["detect.analysis.controls"],
                   data=f"{out}/beside.csv", keys=2))
