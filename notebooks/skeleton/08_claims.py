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
# # Bone metastasis: claimed versus reproduced (C5-C7)
#
# ```{admonition} Simulated data
# :class: warning
# The verdicts below are about the method on the simulated skeletal phantom, not about
# clinical performance.
# ```
#
# Verdicts are computed, not written: a row is **supported** when the CI of the difference
# lies above zero, **contradicted** when it lies below, **inconclusive** when it contains zero.
# A claim is supported (contradicted) only when all its interval rows are, **mixed** when some
# rows are supported and others contradicted, inconclusive otherwise. The thesis reports
# absolute differences in accuracy and AUC for C5 and no numbers for C6 and C7.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
classify_dir = "results/skeleton/classify"
c3d_dir = "results/skeleton/c3d"
out = "results/skeleton/claims"
metrics = None  # DVC metrics JSON, passed by dvc.yaml

# %%
from crossmodal.params import load_params
from crossmodal.stages.skeleton import claims

params = load_params(params_path, profile)
tables = claims.run(params, classify_dir=classify_dir, c3d_dir=c3d_dir, out=out, metrics=metrics)

# %% [markdown]
# ## Late fusion (features) versus early fusion (C3D)
#
# Every fused-feature classifier minus C3D (paired patient bootstrap; DeLong on AUC). "best"
# and "median" are ranked by fused AUC on these same data, so the best one's margin is
# optimistic.

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.report.skeleton.claims import c3d_difference_table
from crossmodal.report.skeleton.claims import choices_table
from crossmodal.report.skeleton.claims import claims_view
from crossmodal.report.skeleton.claims import verdict_summary

display(c3d_difference_table(tables["c3d_comparisons"]))

# %% [markdown]
# ## Thesis says, our choice
#
# Every entry of the right-hand column is read from `params.yaml` (profile applied).

# %% tags=["hide-input"]
pd.set_option("display.max_colwidth", 120)
display(choices_table(params))

# %% [markdown]
# ## Claimed versus reproduced

# %% tags=["hide-input"]
display(claims_view(tables["claims"], ci=params["classify"]["ci"]))
display(Markdown(verdict_summary(tables["summary"])))
