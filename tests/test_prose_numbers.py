"""No number typed into a chapter's prose: every number a reader sees in the text of a
notebook page (or of the book's own pages) is glued from a stage, or is on the allow-list
below with the reason it may be typed (a year, a thesis figure, a name, a definition).
Tables and figures come from code cells and are not prose, but their captions are: the
caption text a page's code or cell metadata writes is checked the same way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pytest
import yaml

from conftest import REPO

CHAPTERS = sorted((REPO / "notebooks").rglob("*.py"))
BOOK_PAGES = [REPO / "book" / "intro.md", REPO / "book" / "architecture.md"]  # api.md is autodoc only

#: Numbers that are part of a name, not a quantity.
NAMES = [r"\bC\d\b", r"\bC\d[–-]C\d\b", r"\bPart \d\b", r"\b\d-D\b", r"\b\d+-bit\b", r"\bResNet-\d+\b",
         r"\bSHA-\d+\b", r"\bAVX-\d+\b", r"\bParts \d and \d\b", r"\bPython \d+\.\d+\b", r"\bAP50-95\b", r"\b\d\d_[a-z_]+\.ipynb\b"]
#: Typed numbers that may stay where they are a definition, not a result: each in its context.
DEFINITIONS = {
    r"\[0, 1\]": "a scale's range",
    r"\(1 [−-] w\)": "a weighted sum's complement",
    r"\(1 [−-] region / marrow\)|marrow [−-] 1\b": "a contrast's definition",
    r"\bp = 1\b": "the p-value a not measurable row keeps",
    r"\(it must be\s+0\)|\bis\s+0\b": "a count or switch that must be zero",
    r"\b0\.25 is a constant 0\.5\b": "the Brier score of a constant prediction",
    r"\b100 %": "the whole training cohort",
    r"\b8 bins from 0\.2\b": "the thesis's binning (8 bins from confidence 0.2)",
    r"\bstride (?:is|of) 8 pixels\b": "YOLO's finest stride, a property of the architecture",
    r"\b45-minute\b": "the runtime budget the default profile is sized for",
}
#: Typed numbers that may stay anywhere, each with why.
ALLOWED = {
    "2023": "the thesis's year",
    "+6.06 %": "thesis figure (claim C1)", "+8.9 %": "thesis figure (claim C2)",
    "+7.9 %": "thesis figure (claim C5)", "+8.5 %": "thesis figure (claim C5)",
    "220": "thesis figure (Part 1 cohort size)", "72,602": "thesis figure (Part 1 slices)",
    "95 %": "the confidence level of every CI (checked against params below)",
}
NUMBER = re.compile(r"(?<![\w.,])[-+−]?\d[\d,]*(?:\.\d+)?(?:\s?%)?(?![\w])")


def typed_numbers(markdown: str) -> list[str]:
    """Numbers in ``markdown`` prose that are neither glued, in code, a name, a definition
    in its context nor allowed."""
    text = re.sub(r"\{glue:[a-z]+\}`[^`]*`", " ", markdown)  # glued values
    text = re.sub(r"`[^`]*`", " ", text)  # code spans: keys, paths, commands
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    for pattern in [*NAMES, *DEFINITIONS]:
        text = re.sub(pattern, " ", text)
    found = [m.group(0).strip().rstrip(",").replace("−", "-") for m in NUMBER.finditer(text)]
    return [n for n in found if n not in ALLOWED]


def prose_of(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text()
    return "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")


def captions_of(path: Path) -> str:
    """The typed text of every caption on a page: figure captions in cell metadata and the
    literal parts of each ``caption=`` argument (an f-string's fields are computed, not typed)."""
    texts = []
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code":
            continue
        texts.append(cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", ""))
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.keyword) and node.arg == "caption":
                texts += [part.value for part in ast.walk(node.value)
                          if isinstance(part, ast.Constant) and isinstance(part.value, str)]
    return "\n".join(texts)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_number_is_typed_into_a_caption(path):
    assert typed_numbers(captions_of(path)) == [], f"{path.relative_to(REPO)}: a caption types a number"


def test_captions_are_read_from_metadata_and_caption_arguments(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('# %% mystnb={"figure": {"caption": "AP 0.7 on the test"}}\nshow()\n\n'
                    '# %%\nbook_table(t, caption=f"{n} patients, " "12 seeds.", name="tbl-x")\n')
    assert typed_numbers(captions_of(page)) == ["0.7", "12"]


@pytest.mark.parametrize("path", CHAPTERS + BOOK_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_number_is_typed_into_the_prose(path):
    assert typed_numbers(prose_of(path)) == [], f"{path.relative_to(REPO)}: glue these from a stage, or reword"


def test_a_typed_result_is_caught_and_glued_or_named_ones_are_not():
    assert typed_numbers("The proposed input reached AP50 0.74 on 96 patients (+12 %).") == ["0.74", "96", "+12 %"]
    assert typed_numbers("AP50 {glue:text}`c1_ours` for C1 on the `detect.seeds: [0, 1]` runs, 3-D FROC") == []
    assert typed_numbers("the thesis's +6.06 % in 2023; see [C1](../pelvis/07_claims.ipynb)") == []
    # a definition passes only in its own words: the same digits elsewhere are caught
    assert typed_numbers("CT window to [0, 1]; 8 bins from 0.2") == []
    assert typed_numbers("PET alone found 1 lesion in 8 patients at 0.2 FP") == ["1", "8", "0.2"]


def test_the_allowed_confidence_level_is_the_one_the_params_set():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    levels = {params["detect"]["evaluate"]["ci"], params["classify"]["ci"]}
    assert levels == {0.95}, "the prose says 95 % CIs: change ALLOWED with the params"
