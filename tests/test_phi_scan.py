"""The PHI scan (tests/phi_scan.py) finds every kind of identifier in every kind of file it
claims to read, and nothing in clean files."""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from phi_scan import header_identifiers
from phi_scan import identifier_pattern
from phi_scan import scan_tree


def _image(fmt: str, text: str, **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4), 7).save(buffer, fmt, **save)
    return buffer.getvalue()


def _png(text: str, chunk: str = "tEXt") -> bytes:
    info = PngInfo()
    if chunk == "iTXt":
        info.add_itxt("Comment", text, zip=True)
    else:
        info.add_text("Comment", text, zip=chunk == "zTXt")
    return _image("PNG", text, pnginfo=info)


def _jpeg_exif(text: str) -> bytes:
    exif = Image.Exif()
    exif[270] = text  # ImageDescription
    return _image("JPEG", text, exif=exif)


def _nifti(text: str, where: str) -> bytes:
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    if where == "descrip":
        image.header["descrip"] = text.encode()
    else:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", text.encode()))
    return gzip.compress(image.to_bytes(), mtime=0)


def _notebook(text: str, image: bool) -> bytes:
    if image:
        output = {"output_type": "display_data", "metadata": {},
                  "data": {"image/png": base64.b64encode(_png(text)).decode(), "text/plain": ["<Figure>"]}}
    else:
        output = {"output_type": "stream", "name": "stdout", "text": [f"case C1a2b3c4: {text}\n"]}
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["show()"], "outputs": [output]}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def _npz(text: str) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, cases=np.array(["C1a2b3c4", text]), suv=np.arange(3.0))
    return buffer.getvalue()


# sample kind -> (file name, content for a text, the scanned kinds it counts as)
SAMPLES = {
    "csv": ("table.csv", lambda t: f"case,note\nC1a2b3c4,{t}\n".encode(), {"csv"}),
    "csv.gz": ("table.csv.gz", lambda t: gzip.compress(f"case,note\nC1,{t}\n".encode(), mtime=0), {"csv"}),
    "json": ("record.json", lambda t: json.dumps({"note": t}).encode(), {"json"}),
    "yaml": ("params.yaml", lambda t: f"note: '{t}'\n".encode(), {"yaml"}),
    "html": ("page.html", lambda t: f"<p>{html.escape(t)}</p>".encode(), {"html"}),
    "html image": ("figure.html", lambda t: f'<img src="data:image/png;base64,{base64.b64encode(_png(t)).decode()}">'
                   .encode(), {"html", "embedded image"}),
    "png tEXt": ("a.png", lambda t: _png(t, "tEXt"), {"png"}),
    "png zTXt": ("b.png", lambda t: _png(t, "zTXt"), {"png"}),
    "png iTXt": ("c.png", lambda t: _png(t, "iTXt"), {"png"}),
    "jpeg comment": ("a.jpg", lambda t: _image("JPEG", t, comment=t.encode()), {"jpeg"}),
    "jpeg exif": ("b.jpeg", _jpeg_exif, {"jpeg"}),
    "tiff tag": ("a.tif", lambda t: _image("TIFF", t, tiffinfo={270: t}), {"tiff"}),
    "nifti descrip": ("ct.nii.gz", lambda t: _nifti(t, "descrip"), {"nifti"}),
    "nifti extension": ("pt.nii.gz", lambda t: _nifti(t, "extension"), {"nifti"}),
    "ipynb text": ("a.ipynb", lambda t: _notebook(t, image=False), {"ipynb"}),
    "ipynb image": ("b.ipynb", lambda t: _notebook(t, image=True), {"ipynb", "embedded image"}),
    "npz strings": ("fused.npz", _npz, {"zip", "zip member"}),
}
CLEAN = "simulated case C1a2b3c4, SUVmax 12.5"


def _write(folder: Path, sample: str, text: str) -> Path:
    name, content, _ = SAMPLES[sample]
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content(text))
    return path


@pytest.fixture(scope="module")
def secrets(pelvis_cohort) -> dict[str, str]:
    """One identifier of each kind, as the phantom wrote it, in the case it is planted in."""
    ds = pydicom.dcmread(next(pelvis_cohort.rglob("CT/0001.dcm")), stop_before_pixels=True)
    birth = str(ds.PatientBirthDate)
    return {
        "patient family name (upper case)": ds.PatientName.family_name.upper(),
        "patient name": str(ds.PatientName),
        "patient ID": str(ds.PatientID),
        "other patient ID": str(ds.OtherPatientIDs),
        "birth date": birth,
        "birth date, ISO": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
        "accession number": str(ds.AccessionNumber),
        "study ID": str(ds.StudyID),
        "institution's own word": str(ds.InstitutionName).split()[0],
        "institution address": str(ds.InstitutionAddress),
        "referring physician (lower case)": ds.ReferringPhysicianName.family_name.lower(),
        "operator": str(ds.OperatorsName[0]),
    }


def test_the_phantom_identifiers_are_all_collected(secrets, pelvis_cohort):
    ids = {i.lower() for i in header_identifiers(pelvis_cohort)}
    assert {s.lower() for s in secrets.values()} <= ids


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_identifier_is_found_in_each_kind_of_file(sample, secrets, pelvis_cohort, tmp_path):
    ids = header_identifiers(pelvis_cohort)
    for label, secret in secrets.items():
        folder = tmp_path / label.replace(" ", "_")
        path = _write(folder, sample, f"note {secret} end")
        scan = scan_tree(folder, ids)
        assert [where for where, _ in scan.hits] and all(secret.lower() in hit for _, hit in scan.hits), \
            (label, sample, scan.hits)
        assert str(path.relative_to(folder)) in scan.hits[0][0]
        assert set(scan.scanned) == SAMPLES[sample][2] | {"name"}, scan.scanned


def test_identifiers_in_file_and_folder_names_are_found(secrets, pelvis_cohort, tmp_path):
    ids = header_identifiers(pelvis_cohort)
    for i, secret in enumerate(secrets.values()):
        for j, rel in enumerate((f"cases/C1_{secret}.json", f"{secret}/case.json")):
            root = tmp_path / f"{i}_{j}"
            (root / rel).parent.mkdir(parents=True)
            (root / rel).write_text("{}")
            scan = scan_tree(root, ids)
            assert scan.hits and all(where.startswith("name ") for where, _ in scan.hits), (secret, scan.hits)


def test_clean_files_of_every_kind_pass(secrets, pelvis_cohort, tmp_path):
    family = secrets["patient family name (upper case)"].lower()
    near_misses = f"{CLEAN}; {family}son; 0.{secrets['birth date']}7; x{secrets['patient ID']}1"
    for sample in SAMPLES:
        _write(tmp_path / sample.replace(" ", "_"), sample, near_misses)
    scan = scan_tree(tmp_path, header_identifiers(pelvis_cohort))
    assert scan.hits == []
    assert scan.scanned["name"] == 2 * len(SAMPLES)
    for sample, (_, _, kinds) in SAMPLES.items():
        assert all(scan.scanned[kind] for kind in kinds), (sample, scan.scanned)


def test_a_hit_is_a_whole_word_or_number():
    pattern = identifier_pattern({"Chen", "19620314", "PX12345678"})
    assert pattern.search(b"dr chen, ct") and pattern.search(b"chen_ct.nii") and pattern.search(b"born 19620314.")
    assert pattern.search(b"id=px12345678;") and pattern.search(b"dob19620314")
    assert not pattern.search(b"kitchen chenille") and not pattern.search(b"0.19620314 119620314")
    assert not pattern.search(b"px123456789")


def test_headers_are_read_from_any_dicom_file_and_its_sequences(pelvis_cohort, tmp_path):
    ds = pydicom.dcmread(next(pelvis_cohort.rglob("PET/0001.dcm")))
    ds.PatientID = "ZQ98765432"
    ds.PatientBirthDate = "19480229"
    other = Dataset()
    other.PatientID = "QQ11223344"
    ds.OtherPatientIDsSequence = Sequence([other])
    (tmp_path / "export").mkdir()
    ds.save_as(tmp_path / "export" / "IM000001")  # no suffix, as many exports name files
    ids = header_identifiers(tmp_path / "export")
    assert {"ZQ98765432", "QQ11223344", "19480229", "1948-02-29", "29.02.1948", "02/29/1948"} <= ids
    place, *generic = str(ds.InstitutionName).split()  # e.g. Quarvendale General Hospital
    assert {str(ds.InstitutionName), place} <= ids and not set(generic) & ids
