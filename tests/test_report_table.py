"""The book's one table formatter: cells a reader can read, wide tables split, a numbered
MyST table whose caption carries its provenance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossmodal.report.claims import claims_view
from crossmodal.report.common import format_ci
from crossmodal.report.table import book_table
from crossmodal.report.table import format_cells
from crossmodal.report.table import number_cell
from crossmodal.report.table import provenance
from crossmodal.report.table import split_columns


@pytest.mark.parametrize("value, text", [
    (42.0, "42"), (1920, "1920"), (np.int64(7), "7"), (0.412345, "0.412"), (12.345, "12.3"),
    (1.5, "1.5"), (0.1, "0.1"), (0.0500001, "0.05"), (802.2294, "802"), (-0.0987, "-0.0987"), (0.00012, "1.20e-04"),
    (float("nan"), "—"), (None, "—"), (True, "yes"), (np.bool_(False), "no"),
])
def test_number_cells_are_integers_or_three_significant_digits(value, text):
    assert number_cell(value) == text


def test_cells_lose_the_index_and_read_as_shown():
    frame = pd.DataFrame({"slices": [42.0, 1920.0], "AP": [0.41234, np.nan], "ok": [True, False],
                          "gate": ["", "no lesion"]}, index=pd.Index(["ct", "pet"], name="input"))
    table = format_cells(frame)
    assert list(table.columns) == ["input", "slices", "AP", "ok", "gate"]
    assert table.to_dict("records") == [
        {"input": "ct", "slices": "42", "AP": "0.412", "ok": "yes", "gate": ""},
        {"input": "pet", "slices": "1920", "AP": "—", "ok": "no", "gate": "no lesion"}]


def test_a_default_index_is_dropped_and_nested_columns_joined():
    frame = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("yolov8", "AP50"), ("yolov8", "FP")]))
    assert list(format_cells(frame).columns) == ["yolov8 · AP50", "yolov8 · FP"]


def test_wide_tables_split_into_parts_that_keep_their_key_columns():
    table = pd.DataFrame([range(10)], columns=[f"c{i}" for i in range(10)])
    parts = split_columns(table, keys=2, max_columns=5)
    assert [list(p.columns) for p in parts] == [
        ["c0", "c1", "c2", "c3", "c4"], ["c0", "c1", "c5", "c6", "c7"], ["c0", "c1", "c8", "c9"]]
    assert split_columns(table, max_columns=10)[0] is table


def test_book_table_renders_a_numbered_myst_table_with_its_provenance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "claims.csv").write_text("claim\nC1\n")
    frame = pd.DataFrame({"input": ["ct|pet"], "AP": [format_ci(0.41, 0.33, 0.49)]})
    table = book_table(frame, name="tbl-demo", caption="Demo.", stage="claims_pelvis", built_by=claims_view,
                       params=["detect.analysis"], data="results/claims.csv")
    assert table._repr_markdown_().splitlines() == [
        ":::{table} Demo. Stage `claims_pelvis`; built by {py:func}`crossmodal.report.claims.claims_view`; "
        "params `detect.analysis`; data {download}`claims.csv <../../../results/claims.csv>`.",
        ":name: tbl-demo", "", "| input | AP |", "|---|---|", "| ct\\|pet | 0.41 [0.33, 0.49] |", ":::"]
    assert "<caption>Demo. Stage" in table._repr_html_()


def test_split_parts_are_numbered_apart_and_say_which_part_they_are(tmp_path):
    frame = pd.DataFrame([range(9)], columns=[f"c{i}" for i in range(9)])
    markdown = book_table(frame, name="tbl-wide", caption="Wide.", stage="s", built_by=claims_view,
                          max_columns=5)._repr_markdown_()
    assert ":name: tbl-wide\n" in markdown and ":name: tbl-wide-2\n" in markdown
    assert "Wide (part 1 of 2). Stage" in markdown and "Wide (part 2 of 2). Stage" in markdown


def test_pages_that_gather_stages_or_that_the_build_writes_say_so():
    assert provenance(["claims_pelvis", "claims_skeleton"], claims_view).startswith(
        "Stages `claims_pelvis`, `claims_skeleton`; built by")
    assert provenance(None, claims_view).startswith("Written when the book is built (`crossmodal book`); built by")


def test_two_files_of_one_name_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metrics.csv").write_text("x\n")
    text = provenance("s", claims_view, data=["a/metrics.csv", "b/metrics.csv"])
    assert "{download}`a/metrics.csv <../../../a/metrics.csv>`" in text
    assert "{download}`b/metrics.csv <../../../b/metrics.csv>`" in text


def test_a_table_refuses_a_missing_file_a_private_builder_or_a_bad_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(FileNotFoundError, match="results/nothing.csv"):
        book_table(frame, name="tbl-x", caption="X.", stage="s", built_by=claims_view, data="results/nothing.csv")
    with pytest.raises(ValueError, match="public crossmodal function"):
        book_table(frame, name="tbl-x", caption="X.", stage="s", built_by=len)
    with pytest.raises(ValueError, match="start with 'tbl-'"):
        book_table(frame, name="table-x", caption="X.", stage="s", built_by=claims_view)
