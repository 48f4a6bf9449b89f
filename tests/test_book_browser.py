"""The browser checks of the built book (tests/book_browser.py) on a small hand-written
site with one fault of each kind, so a check that finds nothing has been seen to find it.
The book itself is checked on the quick run's build in tests/test_pipeline_e2e.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from book_browser import broken_images
from book_browser import broken_links
from book_browser import browser_missing
from book_browser import console_errors
from book_browser import read_book
from book_browser import uncaptioned_images
from book_browser import uncaptioned_tables
from book_browser import unfilled_glue

# A 1x1 PNG.
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAA"
                         "SUVORK5CYII=")

GOOD_PAGE = """<html><body><section id="top">
<figure><img src="_images/pixel.png"><figcaption>Figure 1. A pixel.</figcaption></figure>
<p>Profile <span class="pasted-text">quick</span>.</p>
<a href="bad.html#faults">faults</a> <a href="sub/page.html">sub</a> <a href="https://example.org/">out</a>
<pre>glue("x", 1)  # {glue:text} in code is not prose</pre>
<table><tr><td>a prose table needs no caption</td></tr></table>
<div class="cell_output"><table id="tbl-good"><caption>Table 1. Good. Stage <code>s</code>; built by
<a href="#top"><code class="py-func">f()</code></a>; data <a class="download" href="_images/pixel.png">pixel.png</a>.</caption>
<tr><td>1</td></tr></table></div>
</section></body></html>"""

BAD_PAGE = """<html><body><section id="faults">
<div class="cell_output"><img src="_images/pixel.png"></div>
<img src="_images/missing.png">
<p>C1 <span class="pasted-text"></span>, C2 {glue:text}<code>C2_verdict</code>.</p>
<a href="good.html#nowhere">bad anchor</a> <a href="gone.html">gone</a> <a href="#faults">here</a>
<div class="cell_output"><table><tr><td>raw frame</td></tr></table></div>
<table id="tbl-nodata"><caption>Table 2. Stage <code>s</code>; built by <a><code class="py-func">f()</code></a>.</caption></table>
<script>undefinedFunction();</script>
</section></body></html>"""


@pytest.fixture(scope="module")
def small_site(tmp_path_factory) -> tuple[Path, dict]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    html = tmp_path_factory.mktemp("site")
    (html / "_images").mkdir()
    (html / "_images" / "pixel.png").write_bytes(PIXEL)
    (html / "good.html").write_text(GOOD_PAGE)
    (html / "bad.html").write_text(BAD_PAGE)
    (html / "sub").mkdir()
    (html / "sub" / "page.html").write_text('<html><body><a href="../good.html#top">up</a></body></html>')
    (html / "search.html").write_text("<html><body><script>alsoUndefined();</script></body></html>")
    return html, read_book(html)


def test_every_book_page_is_read_and_sphinx_own_pages_are_not(small_site):
    _, records = small_site
    assert set(records) == {"good.html", "bad.html", "sub/page.html"}


def test_console_errors_are_found_on_their_page(small_site):
    _, records = small_site
    found = console_errors(records)
    assert len([f for f in found if f.startswith("bad.html: ") and "undefinedFunction" in f]) == 1
    assert not [f for f in found if f.startswith(("good.html", "sub/"))], found


def test_images_that_fail_or_stand_alone_are_found(small_site):
    _, records = small_site
    assert broken_images(records) == [
        "bad.html: _images/missing.png did not load",
        "bad.html: _images/missing.png is in neither a figure nor an output cell"]
    assert uncaptioned_images(records) == ["bad.html: _images/pixel.png", "bad.html: _images/missing.png"]


def test_unfilled_glue_is_found_outside_code(small_site):
    _, records = small_site
    assert unfilled_glue(records) == ["bad.html: 1 empty pasted value(s)", "bad.html: unparsed {glue:text}"]


def test_result_tables_without_caption_builder_or_data_are_found(small_site):
    _, records = small_site
    assert uncaptioned_tables(records) == ["bad.html: table 1 has no caption linking what built it",
                                           "bad.html: table tbl-nodata has no link to its data"]


def test_links_to_missing_files_and_anchors_are_found(small_site):
    html, records = small_site
    assert broken_links(records, html) == ["bad.html: good.html#nowhere has no such id",
                                           "bad.html: gone.html does not exist"]
