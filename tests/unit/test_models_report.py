"""The HTML report renderer (renkei.models.reporting), the card link, the Profile.report hook
and the progress helper, on small synthetic data (no dataset needed)."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.models import DEFAULT_ARTIFACTS_DIR, PROFILES
from renkei.models.card import CARD_FILE, link_report, render_model_card, report_line
from renkei.models.profiles import NoReportError
from renkei.models.progress import progress_enabled, steps, track
from renkei.models.reporting import (
    Classification,
    ReportData,
    RulTrace,
    ScoreTrace,
    Table,
    render_report,
    write_report,
)
from renkei.models.reporting.plots import decimate_minmax, operating_point, score_trace_png

EVIL = '<script>alert("x")</script> & co'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(model: str = "cwru-bearing-mahal") -> ReportData:
    rng = np.random.default_rng(0)
    n = 500
    t = 1_700_000_000.0 + 60.0 * np.arange(n, dtype=np.float64)  # epoch seconds, 1 min apart
    score = np.abs(rng.normal(size=n))
    score[300:320] += 5.0
    y = np.zeros(n, dtype=np.int8)
    y[300:320] = 1
    x = np.arange(50, dtype=np.float64)
    true = 100.0 - 2 * x
    return ReportData(
        model=model,
        title=f"title {EVIL}",
        summary=f"summary {EVIL}",
        metrics={"f1": 0.5, f"odd {EVIL}": float("nan")},
        traces=[
            ScoreTrace(
                name=f"file {EVIL}",
                t=t,
                score=score,
                threshold=3.0,
                windows=[(t[300], t[319])],
                detections=[float(t[301])],
            ),
            ScoreTrace(
                name="rows",
                t=np.arange(n, dtype=np.float64),
                score=score + 0.1,
                threshold=3.0,
                t_label="row",
                log_score=True,
            ),
        ],
        classifications=[Classification(f"pooled {EVIL}", y, score, 3.0)],
        ruls=[RulTrace("engines", x, true, true + 1.0, true - 5.0, true + 5.0, 0.8)],
        tables=[
            Table(
                title=f"per file {EVIL}",
                columns=("file", "F1", "n"),
                rows=[(f"a {EVIL}", 0.123456, 3), ("b", float("nan"), 4)],
            )
        ],
        notes=[f"note {EVIL}"],
    )


def test_report_is_self_contained_escaped_and_has_plots_tables_and_provenance(
    tmp_path: Path,
) -> None:
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "cwru-bearing-mahal")
    path, size = write_report(_data(), tmp_path / "sub" / "r.html", manifest)
    page = path.read_text(encoding="utf-8")
    assert size == len(page.encode("utf-8")) and size < 1_000_000
    # plots: 2 traces + 1 ROC/PR + 1 RUL, each a real PNG embedded as a data: URI
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(b).startswith(PNG_MAGIC) for b in images)
    # nothing external, nothing executable, every text escaped
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert EVIL not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    # tables: headline metrics, the recipe's table (floats 4 digits, NaN as a dash)
    assert "<th>file</th><th>F1</th><th>n</th>" in page
    assert '<td class="num">0.1235</td>' in page and '<td class="num">–</td>' in page
    # provenance from the manifest
    for text in (manifest.sha256, manifest.version, "fitted on", "data source"):
        assert text in page
    # ROC/PR figures at the threshold (score > 3 catches exactly the 20 labelled points)
    assert "ROC AUC" in page and "F1 at threshold" in page


def test_report_refuses_another_models_manifest() -> None:
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "mold-maint-rul")
    with pytest.raises(ValueError, match="mold-maint-rul"):
        render_report(_data("cwru-bearing-mahal"), manifest)


def test_rendering_is_deterministic_and_independent_of_the_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _data()
    trace = data.traces[0]
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    utc_png, utc_page = score_trace_png(trace), render_report(data)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert score_trace_png(trace) == utc_png
        assert render_report(data) == utc_page
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_one_class_and_operating_point() -> None:
    y = np.zeros(10, dtype=np.int8)
    page = render_report(
        ReportData("m", "t", "s", classifications=[Classification("c", y, np.ones(10), 0.5)])
    )
    assert page.count("data:image/png") == 1 and '<td class="num">–</td>' in page
    y[5:] = 1
    fpr, tpr, precision, f1 = operating_point(Classification("c", y, np.arange(10.0), 4.5))
    assert (fpr, tpr, precision, f1) == (0.0, 1.0, 1.0, 1.0)


def test_decimation_keeps_peaks_and_bounds_points() -> None:
    t = np.arange(100_000, dtype=np.float64)
    y = np.zeros_like(t)
    y[54_321] = 9.0
    y[7] = np.nan
    t2, y2 = decimate_minmax(t, y, 3000)
    assert t2.size <= 3000 and 9.0 in y2 and np.all(np.diff(t2) > 0)


def test_card_links_the_report(tmp_path: Path) -> None:
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "cwru-bearing-mahal")
    assert report_line(manifest.name) in render_model_card(manifest)
    t2 = read_manifest(DEFAULT_ARTIFACTS_DIR / "skab-pump-t2")  # its profile has no report
    assert "REPORT.html" not in render_model_card(t2)
    old = "# Model card\n\n- Created: x\n- Runtime: y\n\n## Outputs\n\n- `score`\n"
    (tmp_path / CARD_FILE).write_text(old)
    assert link_report(tmp_path, "m") and not link_report(tmp_path, "m")
    lines = (tmp_path / CARD_FILE).read_text().split("\n")
    assert lines[4] == report_line("m") and lines.count(report_line("m")) == 1
    assert not link_report(tmp_path / "absent", "m")


def test_profile_report_hook() -> None:
    assert callable(PROFILES["cwru-bearing-mahal"].report)
    with pytest.raises(NoReportError, match="skab-pump-t2.*defines no report"):
        _ = PROFILES["skab-pump-t2"].report


def test_progress_is_silent_under_tests_and_drawn_when_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not progress_enabled()
    assert list(track(iter(range(5)), "n")) == [0, 1, 2, 3, 4]
    with steps("s", 3) as advance:
        advance(1)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("RENKEI_PROGRESS", "1")
    assert list(track([1, 2, 3], "counting things")) == [1, 2, 3]
    with steps("stepping", 2) as advance:
        advance()
        advance()
    err = capsys.readouterr().err
    assert "counting things" in err and "3/3" in err and "2/2" in err
    monkeypatch.setenv("RENKEI_PROGRESS", "0")
    assert not progress_enabled()
