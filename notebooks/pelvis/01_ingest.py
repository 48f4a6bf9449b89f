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
# # Cohort and ingestion
#
# The cohort flows: DICOM tree under `data/` (made by the phantom generator for a simulated
# cohort, the scanner for yours; versioned by `data.dvc`) → ingestion (this step: geometry checks, CT in HU, PET in SUVbw by the QIBA rule,
# pseudonymous case IDs) → the case folders every later step reads. The per-case lesion
# statistics and the image montage need PET on the CT grid, so they are on the next page.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
study = "pelvis"        # a key of params studies
out = "results/pelvis/ingest"
test_out = None

# %% tags=["hide-input"]
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.study import data_notice

params = load_params(params_path, profile, study=study)
display(Markdown(data_notice(params)))

# %%
from crossmodal.stages import ingest

report = ingest.run(params, cohort=params["study"]["cohort"], out=out, test_out=test_out)

# %% tags=["hide-input"]
import json
from pathlib import Path

import pandas as pd

from crossmodal.report.cohort import ingest_sentence
from crossmodal.report.cohort import phantom_card
from crossmodal.report.cohort import problems_table
from crossmodal.report.table import book_table

summary = report.to_dict()
display(Markdown(ingest_sentence(summary, params["profile"])))

# %% [markdown]
# ## Locked test cohort
#
# The detectors are tested on a cohort of their own: a separate DICOM tree
# (`cohort.<cohort>.test_root`: for a phantom, drawn from the same ranges with its own
# seed, `phantom.<cohort>_test`; or another cohort's tree, such as real scans), ingested by
# the same rules into its own folder. It is
# used for inference only: every setting (operating confidence, the reference input of a
# claim) is chosen on the validation patients of the development cohort. The ingestion
# stops if a patient appears in both cohorts.

# %% tags=["hide-input"]
if test_out is not None:
    test_summary = json.loads(Path(test_out, "report.json").read_text())
    display(Markdown(ingest_sentence(test_summary, params["profile"])))
    test_problems = problems_table(test_summary)
    display(book_table(test_problems, name=f"tbl-ingest-test-problems-{study}",
                       caption="Files, series and cases of the locked test cohort skipped by ingestion, with the rule each broke.",
                       stage=f"ingest_{study}", built_by=problems_table, params=["ingest"], data=f"{test_out}/report.json")
            if len(test_problems) else Markdown("No file, series or case of the locked test cohort was skipped."))
else:
    display(Markdown("No locked test cohort is configured: the test patients are a split of this cohort."))

# %% [markdown]
# ## Ingested cases
#
# One row per case, as the ingestion wrote it (`cases.csv`).

# %% tags=["hide-input"]
display(book_table(pd.read_csv(f"{out}/cases.csv"), name=f"tbl-ingest-cases-{study}",
                   caption="One row per ingested case of the development cohort: pseudonymous case and patient, "
                           "slices and voxel spacing (x × y × z, mm) of each modality's series.",
                   stage=f"ingest_{study}", built_by=ingest.run, params=[f"cohort.{params['study']['cohort']}", "ingest"], data=f"{out}/cases.csv"))

# %% [markdown]
# ## Ingestion report
#
# Series or files that broke an ingestion rule are listed here with the rule; they were
# skipped, never silently used.

# %% tags=["hide-input"]
problems = problems_table(summary)
display(book_table(problems, name=f"tbl-ingest-problems-{study}",
                   caption="Files, series and cases skipped by ingestion, with the rule each broke.",
                   stage=f"ingest_{study}", built_by=problems_table, params=["ingest"], data=f"{out}/report.json")
        if len(problems) else Markdown("No file, series or case was skipped."))

# %% [markdown]
# ## Phantom card
#
# What the simulation models, with the parameters that control it (from `params.yaml`,
# profile applied), and what it does not model.

# %% tags=["hide-input"]
from crossmodal.report.study import simulation_description

display(Markdown(simulation_description(params) or "No simulation: the cohort is your own DICOM."))

# %% tags=["hide-input"]
# (empty for a cohort of your own DICOM: no phantom section)
display(book_table(phantom_card(params["phantom"].get(params["study"]["cohort"]) or {}), name=f"tbl-phantom-card-{study}",
                   caption=f"`phantom.{params['study']['cohort']}`: every simulated phenomenon's setting, profile applied "
                           "(ranges are sampled per patient).",
                   stage=f"ingest_{study}", built_by=phantom_card, params=[f"phantom.{params['study']['cohort']}"], data=params_path))
