"""No test-set leakage: the fit / threshold / selection code paths only see training rows.

Black-box checks: the evaluation part of a dataset is overwritten with garbage (values and
labels) in a copy of the data directory, and retraining must give the same ONNX bytes and
threshold. Where that is too slow, the fitting function is spied on.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from renkei.models.profiles import cmapss, cwru, mold, nab_stream, skab_z
from tests.datasets import require_data_dir


def _copy(src_root: Path, dst_root: Path, rel: str) -> Path:
    dst = dst_root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_root / rel, dst)
    return dst


def test_skab_test_rows_do_not_change_the_model(tmp_path: Path) -> None:
    data_dir = require_data_dir()
    reference = skab_z.fit_and_threshold(skab_z.normal_parts(skab_z.build(data_dir)))
    _copy(data_dir, tmp_path, skab_z.FREE)  # normal rig data: all of it may be used
    rng = np.random.default_rng(0)
    for rel in skab_z.RUNS:
        with (data_dir / rel).open(newline="") as fh:
            rows = list(csv.reader(fh, delimiter=";"))
        header, body = rows[0], rows[1:]
        for row in body[skab_z.TRAIN_ROWS :]:  # test part: random values, flipped labels
            row[1:9] = [f"{v:.4f}" for v in rng.uniform(0, 300, 8)]
            row[9] = "1" if row[9].startswith("0") else "0"
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with dst.open("w", newline="") as fh:
            csv.writer(fh, delimiter=";").writerows([header, *body])
    manifest = skab_z.train(tmp_path, tmp_path / "out")
    assert manifest.sha256 == _sha(reference.onnx_bytes)
    assert manifest.threshold == reference.threshold
    assert manifest.metrics["all_test.point.f1"] != pytest.approx(0.8610, abs=1e-3)


def _sha(data: bytes) -> str:
    from renkei.models.artifact import sha256_hex

    return sha256_hex(data)


def test_nab_rows_after_probation_do_not_change_the_model(tmp_path: Path) -> None:
    data_dir = require_data_dir()
    _copy(data_dir, tmp_path, nab_stream.LABELS)
    src = data_dir / nab_stream.FILE
    lines = src.read_text().splitlines()
    probation = nab_stream.build(data_dir).probation
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        stamp, value = line.split(",")
        out.append(f"{stamp},{float(value) + (40.0 if i >= probation else 0.0)}")
    (tmp_path / nab_stream.FILE).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / nab_stream.FILE).write_text("\n".join(out) + "\n")
    a = nab_stream.train(data_dir, tmp_path / "a")
    b = nab_stream.train(tmp_path, tmp_path / "b")
    assert a.sha256 == b.sha256 and a.threshold == b.threshold
    assert b.metrics["nab.windows_detected"] < a.metrics["nab.windows_detected"]


def test_cwru_fault_records_and_normal_test_part_do_not_change_the_model(
    tmp_path: Path,
) -> None:
    from scipy.io import loadmat, savemat

    data_dir = require_data_dir()
    rng = np.random.default_rng(1)
    for cls, (rel, _) in cwru.CLASSES.items():
        mat = {k: v for k, v in loadmat(data_dir / rel).items() if not k.startswith("__")}
        for key in [k for k in mat if k.endswith("_DE_time")]:
            x = mat[key].copy()
            start = round(cwru.SPLIT[1] * x.shape[0]) if cls == "normal" else 0
            x[start:] = rng.normal(0, 5.0, size=x[start:].shape)
            mat[key] = x
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        savemat(dst, mat)
    a = cwru.train(data_dir, tmp_path / "a")
    b = cwru.train(tmp_path, tmp_path / "b")
    assert a.sha256 == b.sha256 and a.threshold == b.threshold


def test_cmapss_test_files_do_not_change_fit_or_selection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = require_data_dir()
    from renkei.models.profiles import cmapss_recipe

    monkeypatch.setattr(cmapss_recipe, "PARAMS", {"max_iter": 8, "max_leaf_nodes": 7})
    monkeypatch.setattr(cmapss_recipe, "CALIB_FOLDS", 2)
    monkeypatch.setattr(cmapss_recipe, "MEAN_MEMBERS", 1)
    seen: list[int] = []
    from renkei.models import rul

    real_fit = rul.fit_rul

    def spy(x: Any, y: Any, **kw: Any) -> Any:
        seen.append(int(np.asarray(x).shape[0]))
        return real_fit(x, y, **kw)

    monkeypatch.setattr(rul, "fit_rul", spy)
    _copy(data_dir, tmp_path, cmapss.FILES[0])
    test = np.loadtxt(data_dir / cmapss.FILES[1])
    test[:, 5:] = np.random.default_rng(2).permuted(test[:, 5:], axis=0)  # scramble sensors
    np.savetxt(tmp_path / cmapss.FILES[1], test, fmt="%.4f")
    rul_true = np.loadtxt(data_dir / cmapss.FILES[2])
    np.savetxt(tmp_path / cmapss.FILES[2], rul_true[::-1], fmt="%d")
    a = cmapss.train(data_dir, tmp_path / "a")
    b = cmapss.train(tmp_path, tmp_path / "b")
    assert a.sha256 == b.sha256 and a.algorithm_params == b.algorithm_params  # regimes too
    units = np.loadtxt(data_dir / cmapss.FILES[0])[:, 0]
    lives = np.unique(units, return_counts=True)[1]
    # the fit saw exactly the training rows a test-like cut can reach (truncation model)
    train_rows = int(np.minimum(lives, cmapss_recipe.TRUNC_RUL_MAX + 1).sum())
    assert seen == [train_rows, train_rows]
    assert b.metrics["test.rmse"] != a.metrics["test.rmse"]


def test_mold_fit_sees_only_training_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mold, "TRAIN_RUNS", 4)
    monkeypatch.setattr(mold, "EVAL_RUNS", 2)
    monkeypatch.setattr(mold, "_PARAMS", {"max_iter": 5})
    seeds: list[int] = []
    real_fit = mold.fit

    def spy(runs: list[mold.MoldRun]) -> Any:
        seeds.extend(r.seed for r in runs)
        return real_fit(runs)

    monkeypatch.setattr(mold, "fit", spy)
    manifest = mold.train(tmp_path / "no-data-needed", tmp_path / "out")
    assert seeds == [mold.TRAIN_SEED0 + i for i in range(4)]
    assert manifest.metrics["eval.runs"] == 2.0
    assert not set(seeds) & {mold.EVAL_SEED0 + i for i in range(2)}
