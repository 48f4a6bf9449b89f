"""Real images that a fresh machine can fetch from the package registry (PyPI).

Some Python packages ship real, de-identified scans in their source distributions (the
``totalsegmentator`` sdist: an abdomen-and-pelvis CT with 61 labelled structures; the
``pyradiomics`` sdist: chest CTs with real tumour masks). ``params.yaml`` ``real_data``
pins each one by package, version and SHA-256, names the files to take from it, and
records its licence and citation::

    real_data:
      totalsegmentator:
        package: totalsegmentator
        version: 2.18.0
        sha256: 5d42...
        root: data/real/totalsegmentator
        files: {ct.nii.gz: tests/reference_files/example_ct.nii.gz, ...}   # name: path in the sdist
        licence: Apache-2.0
        citation: Wasserthal J, et al. ...

:func:`fetch_real_source` finds the archive in the registry's simple index (PEP 691 JSON),
downloads it into a cache, checks it against the pinned SHA-256, and writes the chosen
files under ``root`` with ``SOURCE.json`` (where they came from, their own SHA-256s,
licence, citation). Everything is written beside its destination and renamed into place
last, so an interrupted fetch leaves nothing half-written; a fetch that cannot complete
raises :class:`RealSourceError` naming the source and what failed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_INDEX", "RealSourceError", "default_cache_dir", "fetch_real_source", "is_fetched", "sdist_name"]

DEFAULT_INDEX = "https://pypi.org/simple"
SOURCE_RECORD = "SOURCE.json"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_TIMEOUT_S = 60


class RealSourceError(RuntimeError):
    """A real-data source could not be fetched, or did not match its pinned checksum."""


def default_cache_dir() -> Path:
    """Where downloaded archives are kept between fetches: ``$CROSSMODAL_CACHE``, else
    ``$XDG_CACHE_HOME/crossmodal`` (``~/.cache/crossmodal``)."""
    if os.environ.get("CROSSMODAL_CACHE"):
        return Path(os.environ["CROSSMODAL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crossmodal"


def sdist_name(package: str, version: str) -> str:
    """The source distribution's file name, ``<package>-<version>.tar.gz``."""
    return f"{package}-{version}.tar.gz"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched(name: str, source: dict[str, Any]) -> bool:
    """True when ``source['root']`` holds what this pin asks for: its ``SOURCE.json`` names the
    same archive, each file comes from the same archive member, and each file's SHA-256 is
    the one recorded when it was extracted (an edited or damaged file is fetched again)."""
    root = Path(source["root"])
    record = root / SOURCE_RECORD
    if not record.exists():
        return False
    saved = json.loads(record.read_text())
    same_archive = (saved.get("package"), saved.get("version"), saved.get("sha256")) == (
        source["package"], str(source["version"]), source["sha256"])
    files = saved.get("files", {})
    if not same_archive or sorted(files) != sorted(source["files"]):
        return False
    return all(files[target].get("from") == member and (root / target).exists()
               and sha256_of(root / target) == files[target].get("sha256")
               for target, member in source["files"].items())


def fetch_real_source(name: str, source: dict[str, Any], *, cache_dir: str | Path | None = None,
                      index_url: str = DEFAULT_INDEX) -> Path:
    """Make ``real_data.<name>`` available under its ``root`` (see the module doc); returns it.

    Nothing is downloaded when ``root`` already holds this pin, nor when the cache holds the
    archive with the pinned checksum.
    """
    root = Path(source["root"])
    if is_fetched(name, source):
        return root
    archive = _cached_archive(name, source, Path(cache_dir or default_cache_dir()), index_url)
    _extract(name, source, archive, root)
    return root


def _cached_archive(name: str, source: dict[str, Any], cache_dir: Path, index_url: str) -> Path:
    filename = sdist_name(source["package"], str(source["version"]))
    archive = cache_dir / filename
    if archive.exists() and sha256_of(archive) == source["sha256"]:
        return archive
    url = _archive_url(name, source, filename, index_url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{filename}.", dir=cache_dir)
    try:
        try:
            with os.fdopen(handle, "wb") as out, _open(name, url) as response:
                shutil.copyfileobj(response, out, length=1 << 20)
                if getattr(response, "length", None):  # bytes announced but never sent
                    raise http.client.IncompleteRead(b"", response.length)
        except (OSError, http.client.HTTPException) as error:
            raise RealSourceError(f"real_data.{name}: the download of {url} broke off ({error!r}); "
                                  "nothing was written") from error
        got = sha256_of(partial)
        if got != source["sha256"]:
            raise RealSourceError(f"real_data.{name}: {url} has SHA-256 {got}, not the pinned "
                                  f"{source['sha256']}; nothing was written")
        os.replace(partial, archive)
    finally:
        Path(partial).unlink(missing_ok=True)
    return archive


def _open(name: str, url: str, *, accept: str | None = None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:  # reached, but refused: a wrong name, index or proxy
        raise RealSourceError(f"real_data.{name}: {url} answered HTTP {error.code} ({error.reason}); "
                              "check the package name, version and index") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RealSourceError(f"real_data.{name}: the package registry is unreachable ({url}: {reason}); "
                              "fetch on a machine that reaches it, or place the files by hand "
                              "(README 'Real anatomy')") from error


def _archive_url(name: str, source: dict[str, Any], filename: str, index_url: str) -> str:
    """The archive's address in the registry's simple index (PEP 691 JSON)."""
    page = f"{index_url.rstrip('/')}/{source['package']}/"
    with _open(name, page, accept=_SIMPLE_JSON) as response:
        try:
            files = json.loads(response.read())["files"]
        except (ValueError, KeyError) as error:
            raise RealSourceError(f"real_data.{name}: {page} is not a PEP 691 simple index page") from error
        except (OSError, http.client.HTTPException) as error:
            raise RealSourceError(f"real_data.{name}: reading {page} broke off ({error!r})") from error
    for entry in files:
        if entry.get("filename") == filename:
            listed = (entry.get("hashes") or {}).get("sha256")
            if listed and listed != source["sha256"]:
                raise RealSourceError(f"real_data.{name}: the registry lists {filename} with SHA-256 "
                                      f"{listed}, not the pinned {source['sha256']}")
            return urllib.parse.urljoin(page, entry["url"])
    raise RealSourceError(f"real_data.{name}: {page} has no {filename}")


def _extract(name: str, source: dict[str, Any], archive: Path, root: Path) -> None:
    """Write the pinned files and ``SOURCE.json`` into a sibling folder, then rename it to ``root``."""
    prefix = sdist_name(source["package"], str(source["version"]))[: -len(".tar.gz")]
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for target, member in source["files"].items():
                if Path(target).name != target:
                    raise RealSourceError(f"real_data.{name}.files: {target!r} must be a plain file name")
                try:
                    data = tar.extractfile(f"{prefix}/{member}")
                except KeyError:
                    data = None
                if data is None:
                    raise RealSourceError(f"real_data.{name}: {archive.name} has no file {member}")
                with data, open(staging / target, "wb") as out:
                    shutil.copyfileobj(data, out)
        record = {"package": source["package"], "version": str(source["version"]), "sha256": source["sha256"],
                  "archive": archive.name, "licence": source.get("licence"), "citation": source.get("citation"),
                  "files": {target: {"from": member, "sha256": sha256_of(staging / target)}
                            for target, member in sorted(source["files"].items())}}
        (staging / SOURCE_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
        staging.chmod(0o755)  # a temporary folder is private; the data folder is not
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
