"""Replay of small hand-written CSV files: bad input, generic options, timestamp repair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from renkei.edge.sources import ReplayOptions, ReplaySource, SourceError, sanitize_field_name

SKAB_HEADER = (
    "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;"
    "Thermocouple;Voltage;Volume Flow RateRMS;anomaly;changepoint"
)


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _skab_row(second: int, current: str = "1.33", anomaly: str = "0.0") -> str:
    return (
        f"2020-03-09 10:14:{second:02d};0.02;0.04;{current};0.05;79.3;26.0;233.0;32.0;{anomaly};0.0"
    )


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(SourceError, match=r"nope\.csv") as err:
        ReplaySource(ReplayOptions(path=path, preset="skab"))
    assert isinstance(err.value, FileNotFoundError)


def test_missing_column_names_file_column_and_found(tmp_path: Path) -> None:
    header = SKAB_HEADER.replace(";Current", "")
    row = _skab_row(1).replace(";1.33", "")
    path = _write(tmp_path, f"{header}\n{row}\n")
    with pytest.raises(SourceError) as err:
        ReplaySource(ReplayOptions(path=path, preset="skab"))
    msg = str(err.value)
    assert str(path) in msg
    assert "'Current'" in msg
    assert "'Voltage'" in msg


def test_non_numeric_cell_names_line_column_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join([SKAB_HEADER, _skab_row(1), _skab_row(2, "n/a")]) + "\n")
    with pytest.raises(SourceError) as err:
        ReplaySource(ReplayOptions(path=path, preset="skab"))
    msg = str(err.value)
    assert str(path) in msg
    assert "line 3" in msg
    assert "'Current'" in msg
    assert "'n/a'" in msg


def test_empty_cell_is_error_for_skab(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join([SKAB_HEADER, _skab_row(1, "")]) + "\n")
    with pytest.raises(SourceError, match="line 2"):
        ReplaySource(ReplayOptions(path=path, preset="skab"))


def test_bad_timestamp_and_bad_label(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{SKAB_HEADER}\n{_skab_row(1).replace('10:14', '10-14')}\n")
    with pytest.raises(SourceError, match=r"line 2.*does not match"):
        ReplaySource(ReplayOptions(path=path, preset="skab"))
    path = _write(tmp_path, f"{SKAB_HEADER}\n{_skab_row(1, anomaly='0.5')}\n")
    with pytest.raises(SourceError, match=r"'anomaly'.*'0\.5'"):
        ReplaySource(ReplayOptions(path=path, preset="skab"))


def test_wrong_cell_count(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{SKAB_HEADER}\n{_skab_row(1)};extra\n")
    with pytest.raises(SourceError, match="line 2 has 12 cells, expected 11"):
        ReplaySource(ReplayOptions(path=path, preset="skab"))


def test_timestamp_policies(tmp_path: Path) -> None:
    text = "t,x\n2020-01-01 00:00:02,2\n2020-01-01 00:00:01,1\n2020-01-01 00:00:03,3\n"
    path = _write(tmp_path, text)
    with pytest.raises(SourceError, match=r"line 2 .* followed by line 3"):
        ReplaySource(ReplayOptions(path=path, time_columns=("t",)))
    src = ReplaySource(
        ReplayOptions(path=path, time_columns=("t",), time_repair="sort", block_rows=10, start_ms=0)
    )
    block = next(src.blocks())
    assert block.t_ms.tolist() == [0, 1000, 2000]
    assert block.fields["x"].tolist() == [1.0, 2.0, 3.0]
    src = ReplaySource(
        ReplayOptions(
            path=path, time_columns=("t",), time_repair="shift", block_rows=10, start_ms=0
        )
    )
    block = next(src.blocks())
    assert block.fields["x"].tolist() == [2.0, 1.0, 3.0]  # file order kept
    assert np.all(np.diff(block.t_ms) > 0)


def test_generic_csv_defaults_and_labels(tmp_path: Path) -> None:
    text = (
        "date;time;Oil Temp;2nd;fault\n01.02.2024;10:00:00;40,5;1;0\n01.02.2024;10:00:01;41,0;;2\n"
    )
    path = _write(tmp_path, text)
    src = ReplaySource(
        ReplayOptions(
            path=path,
            delimiter=";",
            decimal=",",
            time_columns=("date", "time"),
            time_format="%d.%m.%Y %H:%M:%S",
            label_column="fault",
            missing_values=frozenset({""}),
            stream="shot",
            timestamps="keep",
            block_rows=5,
            units={"Oil_Temp": "°C"},
        )
    )
    assert dict(src.fields) == {"Oil_Temp": "°C", "f2nd": ""}
    block = next(src.blocks())
    assert block.stream == "shot"
    assert block.fields["Oil_Temp"].tolist() == [40.5, 41.0]
    assert np.isnan(block.fields["f2nd"][1])
    assert block.labels is not None
    assert block.labels.tolist() == [0, 2]
    assert block.t_ms[0] == 1_706_781_600_000


def test_kassel_unknown_class_is_error(tmp_path: Path) -> None:
    cols = "upper_workpiece_id;lower_workpiece_id;class_value;date;time"
    path = _write(tmp_path, f"{cols}\n1;1;broken_heater_3;05.06.2024;10:00:00\n")
    with pytest.raises(SourceError, match=r"'class_value'.*'broken_heater_3'"):
        ReplaySource(
            ReplayOptions(
                path=path, preset="kassel", columns={"lower_workpiece_id": "lower_workpiece_id"}
            )
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timestamps": "keep", "start_ms": 0}, "rebase"),
        ({"timestamps": "keep", "speed": 2.0}, "rebase"),
        ({"speed": 0.0}, "speed"),
        ({"block_rows": 0}, "block_rows"),
        ({"preset": "nope"}, "unknown preset"),
        ({"preset": None}, "time_columns"),
    ],
)
def test_option_validation(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    opts: dict[str, object] = {"path": tmp_path / "x.csv", "preset": "skab", **kwargs}
    with pytest.raises(SourceError, match=match):
        ReplayOptions(**opts)  # type: ignore[arg-type]


def test_speed_too_high_for_ms_resolution(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join([SKAB_HEADER, _skab_row(1), _skab_row(2)]) + "\n")
    with pytest.raises(SourceError, match="same millisecond"):
        ReplaySource(ReplayOptions(path=path, preset="skab", speed=5000.0))


def test_sanitize_field_name() -> None:
    assert sanitize_field_name("Volume Flow RateRMS") == "Volume_Flow_RateRMS"
    assert sanitize_field_name("1st-value") == "f1st_value"
    # reserved names (tag keys, time, a leading "_") never come out (issue 11)
    assert sanitize_field_name("_x") == "f_x"
    assert sanitize_field_name("machine") == "machine_"
    assert sanitize_field_name("time") == "time_"
    assert len(sanitize_field_name("x" * 100)) == 64
