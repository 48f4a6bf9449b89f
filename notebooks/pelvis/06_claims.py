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
# # Claims C1–C4: claimed vs reproduced
#
# ```{admonition} Simulated data
# :class: warning
# The verdicts are about the simulated pelvic PET/CT phantom: they test whether the
# thesis's comparisons hold on data with a known truth, not clinical performance.
# ```
#
# | claim | thesis says | our comparison (`params.yaml`, `detect.claims`) |
# |---|---|---|
# | C1 | mean AP +6.06 % over single modality | proposed input minus the best single modality (AP50), per detector |
# | C2 | +8.9 % over other fusion methods | proposed input minus the best baseline fusion (AP50), per detector |
# | C3 | fewer false positives | proposed input minus `fp_reference` (false positives per slice) |
# | C4 | consistent across detectors | C1 and C2 supported for every detector |
# | verdict | – | supported if the CI of the difference lies on the better side of 0, contradicted if on the worse side, inconclusive otherwise (one rule for both parts: `crossmodal.stats.verdict`) |

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
eval_dir = "results/pelvis/evaluation"
out = "results/pelvis/claims"
metrics = "results/pelvis/metrics/claims.json"

# %%
from crossmodal.params import load_params
from crossmodal.stages.pelvis import claims

params = load_params(params_path, profile)
table = claims.run(params, eval_dir=eval_dir, out=out, metrics=metrics)

# %% [markdown]
# ## Claimed vs reproduced (C1–C4)
#
# The thesis's numbers are absolute AP differences read from its abstract; ours are the
# AP50 differences (or false positives per slice for C3) with their 95 % CI. Verdicts are
# computed from the CIs.

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.detection import claims_view
from crossmodal.report.detection import verdict_caveat

display(claims_view(table))

# %% tags=["hide-input"]
evaluated = pd.read_csv(f"{eval_dir}/metrics.csv")
display(Markdown(verdict_caveat(int(evaluated["test_patients"].iloc[0]), len(params["detect"]["seeds"]))))
