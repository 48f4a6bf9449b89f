"""Find patient identifiers in anything a stage or the book build wrote (a test helper).

:func:`header_identifiers` collects every identifying string of every DICOM file of an
input tree: person names and their parts (patient, physicians, operators), patient and
other IDs, accession numbers and study IDs, the birth date in the common written forms,
institution names and addresses and their distinctive words.

:func:`scan_tree` looks for them in every file and folder name under a root and in the
text each kind of file can carry: text files whole, NIfTI headers and extensions, PNG text
chunks (zTXt/iTXt decompressed) and other non-pixel chunks, JPEG segments before the image
data, TIFF tags, images embedded in notebooks and HTML, zip members (``.npz``, ``.pt``), and
gzip-compressed files decompressed. Pixel and voxel values are not text and are not read.

A hit is a case-insensitive occurrence that does not continue a run of letters (for an
identifier that starts or ends with a letter) or of digits (for one that starts or ends
with a digit; a digit after ``.`` belongs to a decimal): ``Dagny_ct`` and ``id=PX123``
are hits, ``kitchen`` is no hit for ``Chen`` nor ``0.196203141`` for ``19620314``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import os
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from PIL import ImageSequence
from pydicom.dataelem import DataElement
from pydicom.misc import is_dicom
from pydicom.multival import MultiValue

ID_KEYWORDS = {"PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "MedicalRecordLocator"}
PLACE_KEYWORDS = {"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "PatientAddress"}
BIRTH_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y")
# Words of institution names and addresses that name no one place; the others are scanned.
GENERIC_PLACE_WORDS = {
    "hospital", "hospitals", "clinic", "clinics", "klinikum", "university", "universitaire", "medical",
    "medicine", "centre", "center", "general", "regional", "district", "county", "national", "cancer",
    "oncology", "radiology", "imaging", "nuclear", "department", "institute", "health", "healthcare",
    "trust", "foundation", "saint", "road", "street", "lane", "avenue", "square", "drive", "place",
    "north", "south", "east", "west", "main", "floor", "building",
}


def _too_short(identifier: str) -> bool:
    """Shorter than this, a value (a StudyID ``1``, a year) is ordinary text, not a leak."""
    return len(identifier) < 4 or (identifier.isdigit() and len(identifier) < 6)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\W_]+", text) if len(w) >= 4]


def _birth_date_forms(value: str) -> set[str]:
    try:
        date = dt.datetime.strptime(value.strip(), "%Y%m%d")
    except ValueError:
        return {value}
    return {date.strftime(fmt) for fmt in BIRTH_DATE_FORMATS}


def value_identifiers(keyword: str, vr: str, value: str) -> set[str]:
    """The identifying forms of one value of a DICOM element (none for other elements)."""
    if vr == "PN":
        return {value.rstrip("^"), *_words(value)}
    if keyword in ID_KEYWORDS:
        return {value}
    if keyword == "PatientBirthDate":
        return _birth_date_forms(value)
    if keyword in PLACE_KEYWORDS:
        return {value, *(w for w in _words(value) if w.lower() not in GENERIC_PLACE_WORDS)}
    return set()


def element_identifiers(element: DataElement) -> set[str]:
    """The identifying strings of one DICOM element, multi-valued ones included."""
    if element.VR != "PN" and element.keyword not in ID_KEYWORDS | PLACE_KEYWORDS | {"PatientBirthDate"}:
        return set()
    values = element.value if isinstance(element.value, (list, tuple, MultiValue)) else [element.value]
    values = [str(v).strip() for v in values if v is not None]  # an empty element holds None
    ids = set().union(*(value_identifiers(element.keyword, element.VR, v) for v in values if v))
    return {i for i in ids if not _too_short(i)}


def dicom_files(root: Path) -> Iterator[Path]:
    """Every DICOM file under ``root``: any ``.dcm`` file, and any other with the DICM preamble."""
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix.lower() == ".dcm" or is_dicom(path):
            yield path


def header_identifiers(root: Path) -> set[str]:
    """Every identifying string in the headers of every DICOM file under ``root``
    (sequences included)."""
    ids: set[str] = set()
    for path in dicom_files(root):
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        for element in ds.iterall():
            ids |= element_identifiers(element)
    return ids


def _trie(identifiers: list[str]) -> str:
    """A pattern matching any of ``identifiers`` (lower case), each followed by the right
    boundary of a hit, branching letter by letter: a flat alternation of thousands of
    identifiers is tried one by one at every position, this one character by character."""
    trie: dict = {}
    for ident in identifiers:
        node = trie
        for char in ident:
            node = node.setdefault(char, {})
        node[""] = "(?![a-z])" if ident[-1].isalpha() else "(?![0-9])" if ident[-1].isdigit() else ""

    def pattern(node: dict) -> str:
        # Longer identifiers first: if one fails its boundary, the shorter one here may hold.
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        branches += [node[""]] if "" in node else []
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return pattern(trie)


def identifier_pattern(identifiers: set[str]) -> re.Pattern[bytes]:
    """One pattern for every identifier, lower case, with the boundaries of a hit (module doc)."""
    lower = {i.lower() for i in identifiers}
    assert lower, "no identifier to scan for"
    groups = [("(?<![a-z])", [i for i in lower if i[0].isalpha()]),
              ("(?<![0-9.])", [i for i in lower if i[0].isdigit()]),
              ("", [i for i in lower if not i[0].isalnum()])]
    return re.compile("|".join(left + _trie(ids) for left, ids in groups if ids).encode())


# ----------------------------------------------------------------- text each kind of file carries

def nifti_header(stream: io.BufferedIOBase) -> bytes:
    """The header and extensions of a NIfTI-1 or -2 file: everything before the voxels."""
    head = stream.read(540)
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0]
        if size == 348:
            offset = int(struct.unpack(order + "f", head[108:112])[0])
            break
        if size == 540:
            offset = struct.unpack(order + "q", head[168:176])[0]
            break
    else:
        raise ValueError("not a NIfTI header")
    offset = max(offset, 352 if size == 348 else 544)  # 0 in a .hdr: the extensions follow
    return head + stream.read(offset - len(head)) if offset > len(head) else head[:offset]


def png_text(data: bytes) -> bytes:
    """Every chunk but the image data, text chunks decompressed."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    parts, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind in (b"IDAT", b"fdAT"):
            continue
        parts.append(body)
        if kind == b"zTXt":
            _, _, rest = body.partition(b"\0")  # after the keyword
            parts.append(zlib.decompress(rest[1:]))
        elif kind == b"iTXt":
            _, _, rest = body.partition(b"\0")  # after the keyword
            compressed, text = rest[0], rest[2:].split(b"\0", 2)[-1]
            parts.append(zlib.decompress(text) if compressed else text)
    return b"\n".join(parts)


def jpeg_text(data: bytes) -> bytes:
    """The segments before the entropy-coded image (EXIF, XMP, comments, ...)."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    start_of_scan = data.find(b"\xff\xda")
    return data[:start_of_scan if start_of_scan >= 0 else len(data)]


def tiff_text(data: bytes) -> bytes:
    """The values of every tag of every page."""
    values = []
    with Image.open(io.BytesIO(data)) as image:
        for page in ImageSequence.Iterator(image):
            for value in page.tag_v2.values():
                values.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(values).encode()


def npy_text(data: bytes) -> bytes:
    """The header of a ``.npy`` array (its dtype may name fields), and its values when they are
    strings; object arrays are pickles, read whole."""
    stream = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    _, _, dtype = read_header(stream)
    header = data[:stream.tell()]
    if dtype.hasobject:
        return data
    if dtype.kind not in "US":
        return header
    values = np.lib.format.read_array(io.BytesIO(data))
    return header + "\n".join(str(v) if dtype.kind == "U" else v.decode("latin-1") for v in values.ravel()).encode()


def sphinx_inventory_text(data: bytes) -> bytes:
    """A Sphinx ``objects.inv``: four header lines, then zlib-compressed text."""
    header = b"".join(data.splitlines(keepends=True)[:4])
    return header + zlib.decompress(data[len(header):])


_DATA_URI = re.compile(rb"data:([\w/+.-]+);base64,([A-Za-z0-9+/=\s]+)")
_IMAGE_KINDS = {"image/png": "png", "image/jpeg": "jpeg", "image/tiff": "tiff"}
_BY_SUFFIX = {".csv": "csv", ".tsv": "csv", ".json": "json", ".yaml": "yaml", ".yml": "yaml",
              ".html": "html", ".htm": "html", ".svg": "svg", ".png": "png", ".jpg": "jpeg",
              ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".ipynb": "ipynb", ".npy": "npy",
              ".npz": "zip", ".pt": "zip", ".pth": "zip", ".zip": "zip"}


def file_kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".nii", ".nii.gz")):
        return "nifti"
    return _BY_SUFFIX.get(os.path.splitext(lower)[1], "other")


def _embedded(text: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``text`` without its base64 data URIs (random letters would match short names), and the
    decoded payloads as (kind, bytes)."""
    found = [(_IMAGE_KINDS.get(m.group(1).decode(), "other"), base64.b64decode(m.group(2)))
             for m in _DATA_URI.finditer(text)]
    return _DATA_URI.sub(b"data:", text), found


def _notebook(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A notebook's JSON without the base64 image outputs, and those images decoded."""
    notebook, images = json.loads(data), []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            bundle = output.get("data", {})
            for mime in [m for m in bundle if m in _IMAGE_KINDS]:
                payload = bundle.pop(mime)
                images.append((_IMAGE_KINDS[mime], base64.b64decode("".join(payload))))
    text, more = _embedded(json.dumps(notebook, ensure_ascii=False).encode())
    return text, images + more


def texts(name: str, data: bytes, kind: str | None = None) -> Iterator[tuple[str, str, bytes]]:
    """(where, kind, text) for a file's content and everything embedded in it; ``kind`` by
    default from the name."""
    if kind is None and file_kind(name) != "nifti" and name.lower().endswith(".gz"):
        yield from texts(name, gzip.decompress(data), file_kind(name[:-3]))
        return
    kind = kind or file_kind(name)
    embedded: list[tuple[str, bytes]] = []
    try:
        if kind == "nifti":
            text = nifti_header(gzip.open(io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data))
        elif kind in ("png", "jpeg", "tiff", "npy"):
            text = {"png": png_text, "jpeg": jpeg_text, "tiff": tiff_text, "npy": npy_text}[kind](data)
        elif kind == "ipynb":
            text, embedded = _notebook(data)
        elif kind == "zip" and zipfile.is_zipfile(io.BytesIO(data)):
            yield from _zip_texts(name, data)
            return
        elif data.startswith(b"# Sphinx inventory"):
            text = sphinx_inventory_text(data)
        else:
            text, embedded = _embedded(data)
    except (ValueError, OSError, zlib.error, KeyError, IndexError, struct.error, zipfile.BadZipFile) as err:
        raise AssertionError(f"{name}: cannot read it as {kind} ({err}); the scan would miss what it holds") from err
    yield name, kind, text
    for i, (inner_kind, payload) in enumerate(embedded):
        for where, _, inner in texts(f"{name}#{i}.{inner_kind}", payload):
            yield where, "embedded image" if inner_kind in ("png", "jpeg", "tiff") else "embedded", inner


def _zip_texts(name: str, data: bytes) -> Iterator[tuple[str, str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.namelist()
        yield name, "zip", "\n".join(members).encode()
        for member in members:
            for where, _, text in texts(f"{name}/{member}", archive.read(member)):
                yield where, "zip member", text


# ----------------------------------------------------------------- the scan

@dataclass
class Scan:
    hits: list[tuple[str, str]] = field(default_factory=list)  # (where, the text that matched)
    scanned: Counter = field(default_factory=Counter)  # files (and names) scanned, per kind


def scan_tree(root: Path, identifiers: set[str]) -> Scan:
    """Scan every file and folder name under ``root`` and every file's text for ``identifiers``."""
    root, pattern, scan = Path(root), identifier_pattern(identifiers), Scan()
    entries = sorted(p for p in root.rglob("*"))
    names = [os.fsencode(p.relative_to(root)) for p in entries]
    for rel in names:
        scan.hits += [(f"name {os.fsdecode(rel)}", m.group().decode("latin-1"))
                      for m in pattern.finditer(rel.lower())]
    scan.scanned["name"] += len(names)
    for path in entries:
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        kinds = set()
        for where, kind, text in texts(rel, path.read_bytes()):
            kinds.add(kind)
            scan.hits += [(where, m.group().decode("latin-1")) for m in pattern.finditer(text.lower())]
        scan.scanned.update(kinds)
    return scan


def assert_no_identifier(root: Path, identifiers: set[str]) -> Counter:
    """Fail on any identifier found under ``root``; return (and print) what was scanned, per kind."""
    scan = scan_tree(root, identifiers)
    print(f"PHI scan of {root}: {dict(sorted(scan.scanned.items()))}")
    assert not scan.hits, f"{len(scan.hits)} identifier(s) found under {root}: {scan.hits[:20]}"
    return scan.scanned
