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
# # Cohort
#
# ```{admonition} Simulated data
# :class: warning
# Every image in this chapter comes from the **embedded pelvic PET/CT phantom**: a seeded,
# physically grounded simulation written as real CT and PET DICOM series and read back
# through the same ingestion a hospital export would take. No real patient is shown.
# No real paired PET/CT cohort with lesion labels can be obtained offline for this study;
# the phantom makes every step checkable against a known truth.
# ```
#
# The cohort flows: phantom generator → DICOM tree under `data/` (versioned by `data.dvc`)
# → ingestion (`crossmodal ingest pelvis`: geometry checks, CT in HU, PET in SUVbw by the
# QIBA rule, pseudonymous case IDs) → the case folders this chapter reads.

# %% tags=["parameters"]
params_path = "params.yaml"
ingest_dir = "results/pelvis/ingest"
out_dir = "results/pelvis/cohort"

# %% tags=["hide-input"]
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown
from IPython.display import display

from crossmodal.io import load_cases
from crossmodal.params import load_params
from crossmodal.report.common import cohort_table
from crossmodal.report.common import describe_distribution
from crossmodal.report.common import flatten_params
from crossmodal.report.common import montage

params = load_params(params_path)
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
cases = load_cases(ingest_dir)
report = json.loads(Path(ingest_dir, "report.json").read_text())
display(Markdown(
    f"Profile **{params['profile']}**: {report['n_files_scanned']} files scanned, "
    f"{report['n_series']} series found, **{report['n_cases']} cases** ingested, "
    f"{report['n_problems']} problems reported."
))

# %% [markdown]
# ## Cohort table
#
# One row per case. Lesion slices are CT slices that contain any lesion voxel; lesions are
# 3-D connected components of the label; SUVmax is read from PET resampled onto the CT grid
# through the DICOM geometry.

# %% tags=["hide-input"]
table = cohort_table(cases)
table.to_csv(out / "cohort_table.csv", index=False)
summary = describe_distribution(table, ["ct_slices", "pet_slices", "lesion_slices", "lesions",
                                        "lesion_volume_ml", "lesion_suvmax"])
summary.to_csv(out / "cohort_summary.csv")
display(summary.round(2))

# %% tags=["hide-input"]
display(table.round(2))

# %% [markdown]
# ## Ingestion report
#
# Series or files that broke an ingestion rule are listed here with the rule; they were
# skipped, never silently used.

# %% tags=["hide-input"]
import pandas as pd

problems = pd.DataFrame(report["problems"], columns=["case", "where", "rule", "detail", "action"])
problems.to_csv(out / "ingest_problems.csv", index=False)
display(problems if len(problems) else Markdown("No file, series or case was skipped."))

# %% [markdown]
# ## Images
#
# CT in the soft-tissue window, PET in SUV on the CT grid, their overlay, and the lesion
# label, at each shown case's largest lesion slice. The overlay uses scanner geometry only:
# the misregistration the phantom applies is still present (the next chapter corrects it).

# %% tags=["hide-input"]
shown = cases[: int(params["cohort_report"]["montage_patients"])]
fig = montage(shown, ct_window=params["cohort_report"]["ct_window"],
              suv_display_max=params["cohort_report"]["suv_display_max"])
fig.savefig(out / "montage.png", dpi=110)
plt.show()

# %% [markdown]
# ## Phantom card
#
# What the simulation models, with the parameters that control it (from `params.yaml`,
# profile applied), and what it does not model.
#
# | phenomenon | how it is simulated |
# |---|---|
# | body, fat, muscle, couch | elliptical body with a subcutaneous fat layer; CT couch under it |
# | pelvic bones | sacrum, iliac wings and femoral heads as ellipsoids (cortical HU) |
# | bladder | water on CT; very hot urinary FDG on PET; fills between CT and the later PET |
# | rectum, bowel | rectal wall with gas; bowel loops with physiological uptake |
# | cervical tumour | lobulated union of ellipsoids, near-isodense to the cervix on CT, hot on PET, optional necrotic core |
# | nodes | small hot pelvic side-wall nodes |
# | PET physics | activity sampled finer, Gaussian PSF, binned to a coarser grid, Poisson counting noise, stored as Bq/ml with per-slice rescale and full SUV tags |
# | CT physics | Gaussian noise in HU; 16-bit storage with rescale intercept |
# | misregistration | rigid shift and rotation of PET relative to CT, stored in the truth sidecar |
#
# **Known limits.** Organs are ellipsoids, not segmented anatomy; no CT partial-volume
# or beam hardening; PET noise is voxel-wise Poisson after the blur, not
# reconstruction-correlated; no attenuation or scatter; no respiratory or bowel motion;
# the bladder fill change is a radial scale, not a deformation of its neighbours. Results
# on the phantom test the pipeline and the direction of effects, not clinical performance.

# %% tags=["hide-input"]
card = flatten_params(params["phantom"]["pelvis"])
card.to_csv(out / "phantom_card.csv", index=False)
display(card)
