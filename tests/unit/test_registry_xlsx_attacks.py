"""Crafted XLSX uploads for the registry import (:func:`renkei.cloud.registry.tabular.read_xlsx`):
entity declarations in the workbook's XML (billion laughs, an external entity) are refused
with a clear error instead of being expanded; a workbook that is not a ZIP is named as such.
The same parser serves ``POST /firms/{firm}/registry.xlsx``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from renkei.cloud.registry import RegistryImportError
from renkei.cloud.registry.tabular import read_xlsx

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>\n"
)


def _workbook(tmp_path: Path) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "machines"
    ws.append(["id", "line_id", "name"])
    ws.append(["m1", "l1", "text cell"])  # openpyxl writes it inline in sheet1.xml
    path = tmp_path / "book.xlsx"
    wb.save(path)
    return path.read_bytes()


def _rewrite(raw: bytes, member: str, text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = text.encode() if info.filename == member else src.read(info.filename)
            dst.writestr(info, data)
    return out.getvalue()


def _poison(raw: bytes, member: str, doctype: str, marker: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        xml = z.read(member).decode()
    body = xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml
    return _rewrite(raw, member, doctype + body.replace("text cell", marker, 1))


def test_billion_laughs_is_refused_not_expanded(tmp_path: Path) -> None:
    raw = _poison(_workbook(tmp_path), "xl/worksheets/sheet1.xml", LAUGHS, "&lol9;")
    with pytest.raises(RegistryImportError) as err:
        read_xlsx(raw, max_rows=100)
    assert "unsafe XML refused" in str(err.value.problems)


def test_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    doctype = f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    raw = _poison(_workbook(tmp_path), "xl/worksheets/sheet1.xml", doctype, "&xxe;")
    with pytest.raises(RegistryImportError) as err:
        read_xlsx(raw, max_rows=100)
    assert "unsafe XML refused" in str(err.value.problems)
    assert "do not leak" not in str(err.value.problems)


def test_plain_workbook_and_not_a_zip(tmp_path: Path) -> None:
    sheets = read_xlsx(_workbook(tmp_path), max_rows=100)
    assert [s.table for s in sheets] == ["machines"]
    assert sheets[0].rows[1] == ["m1", "l1", "text cell"]
    with pytest.raises(RegistryImportError, match="not an XLSX workbook"):
        read_xlsx(b"id,line_id\nm1,l1\n", max_rows=100)
