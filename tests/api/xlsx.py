"""XLSX workbooks for the spreadsheet upload tests (written with openpyxl)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(sheets: dict[str, Sequence[Sequence[object]]]) -> bytes:
    """An XLSX file with one sheet per item (title -> rows of cell values), in order."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
