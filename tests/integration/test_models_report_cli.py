"""`renkei models report NAME` end to end: the real recipe, the committed artifact, the real
data (CWRU: skipped locally / failing in CI without the datasets folder; mold: simulated)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from typer.testing import CliRunner

from renkei.core.manifest import read_manifest
from renkei.models import DEFAULT_ARTIFACTS_DIR
from renkei.models.cli import app
from tests.datasets import require_data_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _images(page: str) -> list[bytes]:
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    return [base64.b64decode(b) for b in found]


def test_report_cwru_on_the_real_data(tmp_path: Path) -> None:
    data_dir = require_data_dir()
    out = tmp_path / "cwru.html"
    result = CliRunner().invoke(
        app,
        ["report", "cwru-bearing-mahal", "--out", str(out), "--data-dir", str(data_dir)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "cwru-bearing-mahal")
    assert 10_000 < out.stat().st_size < 1_000_000
    images = _images(page)
    assert len(images) == 2 and all(i.startswith(PNG_MAGIC) for i in images)  # trace, ROC/PR
    assert manifest.sha256 in page and manifest.training.fitted_on in page
    assert "<h3>Per class (0 HP, ~1797 rpm)</h3>" in page
    # the same figures as `renkei models evaluate` (the committed metrics)
    assert (
        f'<td>normal_test.far</td><td class="num">{manifest.metrics["normal_test.far"]:.4g}' in page
    )
    # the report went to --out: the committed card is not touched by this test
    assert "cwru.html" in result.output


def test_report_mold_writes_beside_the_model_and_links_the_card(tmp_path: Path) -> None:
    model_dir = tmp_path / "mold-maint-rul"
    model_dir.mkdir()
    src = DEFAULT_ARTIFACTS_DIR / "mold-maint-rul"
    for name in ("manifest.json", "model.onnx"):
        (model_dir / name).write_bytes((src / name).read_bytes())
    (model_dir / "MODEL_CARD.md").write_text("# Model card\n\n- Created: x\n\n## Inputs\n")
    result = CliRunner().invoke(
        app, ["report", "mold-maint-rul", "--model-dir", str(model_dir)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    page = (model_dir / "REPORT.html").read_text(encoding="utf-8")
    # 3 score traces + ROC/PR + 3 RUL plots
    assert len(_images(page)) == 7
    assert "Per evaluation run (20 simulated machines)" in page
    assert "[REPORT.html](REPORT.html)" in (model_dir / "MODEL_CARD.md").read_text()


def test_report_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["report", "nope"])
    assert unknown.exit_code == 2 and "known:" in unknown.output
    no_report = runner.invoke(app, ["report", "skab-pump-t2", "--data-dir", str(tmp_path)])
    assert no_report.exit_code == 2 and "has no report" in no_report.output
    untrained = runner.invoke(app, ["report", "mold-maint-rul", "--model-dir", str(tmp_path)])
    assert untrained.exit_code == 1 and "no trained model" in untrained.output
