"""Open a built book in headless Chromium, as a reader would (a test helper).

:func:`read_book` serves an HTML folder over ``http://127.0.0.1`` (the book's JavaScript
behaves as on a web server, not as from ``file://``), loads every page of the book in
Chromium through Selenium and records, per page, what the browser saw: console errors,
images, glued values, links and element ids. The check functions take those records and
return what is wrong, one line per finding, so a test asserts an empty list and its
failure message names every page and element at fault.

Selenium drives the Debian ``chromium`` and ``chromium-driver`` packages (`.ci/run`
installs them); :func:`browser_missing` says why a machine cannot run the checks.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote
from urllib.parse import urldefrag
from urllib.parse import urlsplit

# Sphinx's generated pages, not the book's own.
NOT_BOOK_PAGES = {"genindex.html", "search.html", "py-modindex.html"}

# Console errors that are no fault of the book: Chromium asks every site for /favicon.ico
# (the book declares none), and pydata-sphinx-theme reports its fallback to "auto" mode on
# a first visit, when the browser has no stored mode yet.
NOT_THE_BOOKS_ERRORS = ("/favicon.ico - Failed to load resource",
                        '"Got invalid theme mode: . Resetting to auto."')

# What one page shows, gathered in the page itself after it loaded.
PAGE_RECORD_JS = """
const outsideCode = document.body.cloneNode(true);
outsideCode.querySelectorAll('pre, script, style').forEach(e => e.remove());
return {
  url: location.href,
  ids: Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name),
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  images: Array.from(document.images, img => ({
    src: img.getAttribute('src'),
    loaded: img.complete && img.naturalWidth > 0,
    placed: img.closest('figure, .cell_output') !== null,
    caption: (img.closest('figure')?.querySelector('figcaption')?.textContent || '').trim(),
  })),
  tables: Array.from(document.querySelectorAll('table'), table => ({
    id: table.id,
    output: table.closest('.cell_output') !== null || table.id.startsWith('tbl-'),
    caption: (table.querySelector('caption')?.textContent || '').trim(),
    builders: table.querySelectorAll('caption a code.py-func').length,
    downloads: table.querySelectorAll('caption a.download').length,
  })),
  pasted: Array.from(document.querySelectorAll('.pasted-text, .pasted-inline'), e => e.textContent.trim()),
  unparsed_glue: outsideCode.textContent.match(/\\{glue(:[a-z]+)?\\}/g) || [],
  system_messages: document.querySelectorAll('.system-message').length,
};
"""


def browser_missing() -> str | None:
    """Why headless Chromium cannot run here, or None when it can."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return (f"{' and '.join(missing)} not on PATH: install the Debian packages chromium and "
                "chromium-driver (.ci/run does) to open the book in a browser")
    return None


def book_pages(html: Path) -> list[Path]:
    """Every page of the book under ``html``: its .html files less Sphinx's generated ones
    and the copied sources and static files."""
    return sorted(page for page in html.rglob("*.html")
                  if page.relative_to(html).parts[0] not in ("_sources", "_static")
                  and page.name not in NOT_BOOK_PAGES)


@contextlib.contextmanager
def served(html: Path) -> Iterator[str]:
    """``html`` served over HTTP from a thread; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the checks read the browser, not the access log
            pass

    handler = functools.partial(QuietHandler, directory=html)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium session whose console messages can be read back."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1024"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def read_page(driver, url: str) -> dict:
    """What the browser saw on ``url``: the page's record and its console errors."""
    driver.get(url)
    record = driver.execute_script(PAGE_RECORD_JS)
    # Leaving the page first makes every message it logged reach the driver before the log
    # is read, so a late one is not counted against the next page.
    driver.get("about:blank")
    record["console_errors"] = [entry["message"] for entry in driver.get_log("browser")
                                if entry["level"] == "SEVERE"
                                and not any(known in entry["message"] for known in NOT_THE_BOOKS_ERRORS)]
    return record


def read_book(html: Path) -> dict[str, dict]:
    """Every book page under ``html`` as the browser saw it, by path relative to ``html``;
    pages outside the book that its links point into with an anchor (the index) are read
    too, for their ids."""
    html = Path(html)
    with served(html) as base, chromium() as driver:
        paths = [page.relative_to(html).as_posix() for page in book_pages(html)]
        records = {path: read_page(driver, base + path) for path in paths}
        linked = {target for record in list(records.values())
                  for target, anchor in internal_links(record, base)
                  if anchor and target.endswith(".html") and (html / target).is_file()}
        for target in sorted(linked - set(records)):
            records[target] = read_page(driver, base + target) | {"outside_book": True}
    for record in records.values():
        record["base"] = base
    return records


def internal_links(record: dict, base: str) -> list[tuple[str, str]]:
    """The page's links to its own site, as (path relative to the site root, anchor)."""
    links = []
    for href in record["links"]:
        url, anchor = urldefrag(href)
        if not url.startswith(base):
            continue
        path = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
        links.append((path + "index.html" if path.endswith("/") or not path else path, unquote(anchor)))
    return links


def console_errors(records: dict[str, dict]) -> list[str]:
    """Every message the browser logged at error level (SEVERE), by page, less
    :data:`NOT_THE_BOOKS_ERRORS`."""
    return [f"{page}: {message}" for page, record in records.items() for message in record["console_errors"]]


def broken_images(records: dict[str, dict]) -> list[str]:
    """Images that did not load (no pixels) or that stand outside a figure and an output cell."""
    found = []
    for page, record in records.items():
        found += [f"{page}: {image['src']} did not load" for image in record["images"] if not image["loaded"]]
        found += [f"{page}: {image['src']} is in neither a figure nor an output cell"
                  for image in record["images"] if not image["placed"]]
    return found


def uncaptioned_images(records: dict[str, dict]) -> list[str]:
    """Images without a figure caption (a ``<figcaption>`` with text in their ``<figure>``)."""
    return [f"{page}: {image['src']}" for page, record in records.items()
            for image in record["images"] if not image["caption"]]


def uncaptioned_tables(records: dict[str, dict]) -> list[str]:
    """Result tables (those a page's code wrote, in an output cell or glued with a ``tbl-``
    name) without a caption that links the function that built them, or, when it names a
    stage, without a download link to the data behind them. Tables written in the prose
    (a page's design choices) are the author's text and need none."""
    found = []
    for page, record in records.items():
        for index, table in enumerate(t for t in record["tables"] if t["output"]):
            where = f"{page}: table {table['id'] or index + 1}"
            if not table["caption"] or not table["builders"]:
                found.append(f"{where} has no caption linking what built it")
            elif re.search(r"\bStages? \w", table["caption"]) and not table["downloads"]:
                found.append(f"{where} has no link to its data")
    return found


def unfilled_glue(records: dict[str, dict]) -> list[str]:
    """Glued values a reader would see unfilled: empty pasted values, glue roles left as
    literal text, and MyST-NB or docutils messages rendered into the page."""
    found = []
    for page, record in records.items():
        empty = sum(not text for text in record["pasted"])
        found += [f"{page}: {empty} empty pasted value(s)"] if empty else []
        found += [f"{page}: unparsed {role}" for role in record["unparsed_glue"]]
        messages = record["system_messages"]
        found += [f"{page}: {messages} system message(s)"] if messages else []
    return found


def broken_links(records: dict[str, dict], html: Path) -> list[str]:
    """Links within the site to a file that does not exist, or to an anchor that no
    element of the target page has as its id."""
    found = []
    for page, record in records.items():
        if record.get("outside_book"):
            continue
        for target, anchor in internal_links(record, record["base"]):
            if not (Path(html) / target).is_file():
                found.append(f"{page}: {target} does not exist")
            elif anchor and target.endswith(".html") and anchor not in records[target]["ids"]:
                found.append(f"{page}: {target}#{anchor} has no such id")
    return found
