"""``renkei models report NAME``: run a profile's ``report`` and write its HTML page."""

from __future__ import annotations

from pathlib import Path

from renkei.core.manifest import read_manifest
from renkei.models.card import REPORT_FILE, link_report
from renkei.models.profiles import PROFILES
from renkei.models.reporting.render import write_report

__all__ = ["report_profile"]


def report_profile(
    name: str, *, data_dir: Path, model_dir: Path, out: Path | None = None
) -> tuple[Path, int]:
    """Build profile ``name``'s report from the artifact in ``model_dir`` and write it.

    Args:
        name: a key of :data:`renkei.models.profiles.PROFILES`.
        data_dir: the datasets folder (unused by simulated profiles).
        model_dir: the trained artifact (``manifest.json`` + ONNX), as the gateway loads it.
        out: the HTML file; default ``model_dir / REPORT.html``, in which case the folder's
            ``MODEL_CARD.md`` is given the link to it if it lacks one.

    Returns:
        The written path and its size in bytes.

    Raises:
        KeyError: unknown profile (the message lists the known ones).
        renkei.models.profiles.NoReportError: the profile has no ``report``.
        FileNotFoundError: the manifest or a data file is missing.
        ValueError: the report data do not belong to this model.
    """
    if name not in PROFILES:
        raise KeyError(f"unknown model profile {name!r}; known: {sorted(PROFILES)}")
    build = PROFILES[name].report
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    data = build(Path(data_dir), model_dir)
    target = model_dir / REPORT_FILE if out is None else Path(out)
    written = write_report(data, target, manifest)
    if target.resolve().parent == model_dir.resolve():
        link_report(model_dir, name)
    return written
