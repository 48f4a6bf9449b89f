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
# # Reproduce this book
#
# This page is written when the book is built (`make book`), from what the run left on
# disk: `params.yaml`, `pyproject.toml`, `dvc.yaml`, `dvc.lock`, `data.dvc` and the wall
# time `crossmodal notebook` records for each stage in `.timings/`. The results are from the
# **simulated cohort** unless the profile below reads your own data.
#
# ## The two commands
#
# ```bash
# make repro   # creates .venv, installs, generates the embedded cohort, runs `dvc repro`, builds the book
# make test    # creates .venv if needed, runs the whole test suite
# ```
#
# Then open `book/_build/html/index.html`. Requirements: Python 3.11 and PyPI; nothing else is
# downloaded (no model weights; the real scans are files of packages' source distributions
# on PyPI, pinned by their checksums). A stage whose code, parameters and inputs have
# not changed is not rerun: `dvc repro` keeps its outputs, and `dvc status` lists what would run.

# %% tags=["parameters"]
params_path = "params.yaml"
profile = None
pyproject = "pyproject.toml"
dvc_yaml = "dvc.yaml"
dvc_lock = "dvc.lock"
data_dvc = "data.dvc"
timings = ".timings"

# %% tags=["remove-cell"]
import pandas as pd
from IPython.display import Markdown
from IPython.display import display

from crossmodal.params import load_params
from crossmodal.report.book import data_hash
from crossmodal.report.book import machine
from crossmodal.report.book import package_versions
from crossmodal.report.book import profile_sentence
from crossmodal.report.book import profile_settings
from crossmodal.report.book import read_timings
from crossmodal.report.book import run_table
from crossmodal.report.book import stage_hashes
from crossmodal.report.book import stage_times
from crossmodal.report.book import wall_time_sentence
from crossmodal.report.table import book_table

name = load_params(params_path, profile)["profile"]

# %% [markdown]
# ## The profile
#
# `params.yaml` holds every parameter; its `profile` line picks a profile, whose entry under
# `profiles:` overrides only the keys it names (switch with `dvc exp run -S profile=quick`).

# %% tags=["remove-input"]
overrides = profile_settings(params_path, name)
display(Markdown(profile_sentence(name, overrides)))
if not overrides.empty:
    display(book_table(overrides, name="tbl-profile", caption=f"The settings the profile {name} overrides.",
                       stage=None, built_by=profile_settings, params=["profile", f"profiles.{name}"], data=params_path))

# %% [markdown]
# ## Packages
#
# Every package `pyproject.toml` requires, with the version installed where the book was
# built. The install pins each one exactly (but `pydantic`, held to its major version).

# %% tags=["remove-input"]
display(book_table(package_versions(pyproject), name="tbl-packages",
                   caption="Every package the project requires: the pin and the version installed where the book was built.",
                   stage=None, built_by=package_versions, data=pyproject))

# %% [markdown]
# ## The machine
#
# The machine that built this page; the stages ran on it too when `make repro` ran them.
# Detectors train on the GPU when torch sees one and on the CPU otherwise.

# %% tags=["remove-input"]
display(book_table(pd.Series(machine(), name="").to_frame(), name="tbl-machine",
                   caption="The machine that built this page.", stage=None, built_by=machine))

# %% [markdown]
# ## The stages of this run
#
# One row per `dvc.yaml` stage, in pipeline order: the wall time of its notebook run
# (recorded by `crossmodal notebook`; *not recorded* where no record exists), when it
# finished and with which profile, then what `dvc.lock` records for it. *deps* and *outs*
# give how many entries the lock holds and a short hash of them (the start of the md5
# over the sorted `path md5` lines: data and code in, results out); *params
# hash* is the same over the parameter values the stage read. Two runs with the same
# hashes ran the same code with the same parameters on the same data and wrote the same
# files.

# %% tags=["remove-input"]
times = stage_times(dvc_yaml, read_timings(timings))
display(Markdown(wall_time_sentence(times)))
display(book_table(run_table(times, stage_hashes(dvc_lock)), name="tbl-stages",
                   caption="Every stage of this run: wall time of its notebook, when it finished, with which profile, "
                           "and the hashes dvc.lock records for it.",
                   stage=None, built_by=run_table, data=[dvc_yaml, dvc_lock], max_columns=9))

# %% [markdown]
# ## The input data
#
# `data.dvc` versions `data/`, the input cohorts. Generation is deterministic, so a fresh
# clone regenerates the same md5 without a DVC remote; the fingerprints identify each
# phantom's parameters and generator code.

# %% tags=["remove-input"]
display(book_table(pd.Series(data_hash(data_dvc), name="").to_frame(), name="tbl-data-hash",
                   caption="What data.dvc records of the input cohorts.", stage=None, built_by=data_hash, data=data_dvc))
