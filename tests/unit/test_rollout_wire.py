"""Rollout part of the wire contract: topics and desired/report payloads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from renkei.core.wire import (
    DeployResult,
    DesiredModel,
    ModelDesired,
    ModelReport,
    RunningModel,
    WireError,
    decode_rollout_payload,
    encode,
    parse_rollout_topic,
    parse_topic,
    rollout_topic,
)

H = "0123456789abcdef" * 4


def test_topic_round_trip() -> None:
    for kind in ("desired", "report"):
        t = rollout_topic(firm="acme", site="acme-s1", gateway="gw-1", kind=kind)
        assert t == f"renkei/rollout/v1/acme/acme-s1/gw-1/{kind}"
        p = parse_rollout_topic(t)
        assert (p.firm, p.site, p.gateway, p.kind) == ("acme", "acme-s1", "gw-1", kind)


@pytest.mark.parametrize(
    "topic",
    [
        "renkei/rollout/v1/acme/s1/gw-1/state",
        "renkei/rollout/v1/acme/s1/gw-1",
        "renkei/rollout/v2/acme/s1/gw-1/desired",
        "renkei/rollout/v1/acme/s 1/gw-1/desired",
        "renkei/v1/acme/s1/_gw/gw-1/state",
    ],
)
def test_parse_rollout_topic_rejects(topic: str) -> None:
    with pytest.raises(WireError) as exc:
        parse_rollout_topic(topic)
    assert exc.value.reason == "bad_topic"


def test_rollout_topics_are_outside_the_ingest_tree() -> None:
    """The ingest subscribes to renkei/v1/#: control-plane messages never reach it."""
    t = rollout_topic(firm="acme", site="s1", gateway="gw-1", kind="desired")
    assert not t.startswith("renkei/v1/")
    with pytest.raises(WireError):
        parse_topic(t)
    with pytest.raises(WireError):
        rollout_topic(firm="ac/me", site="s1", gateway="gw-1", kind="desired")


def _desired(**over: Any) -> dict[str, Any]:
    entry = {
        "version": "1.1.0",
        "sha256": H,
        "manifest_sha256": H,
        "key_id": H[:16],
        "signature": "c2ln",
        "deployment": 7,
    }
    return {"v": 1, "gw": "gw-1", "sent_ms": 1, "models": {"skab-pump-t2": entry | over}}


def test_desired_round_trip_and_unsigned_default() -> None:
    msg = decode_rollout_payload(orjson.dumps(_desired()), "desired")
    assert isinstance(msg, ModelDesired)
    assert decode_rollout_payload(encode(msg), "desired") == msg
    unsigned = _desired()
    del unsigned["models"]["skab-pump-t2"]["signature"]
    del unsigned["models"]["skab-pump-t2"]["key_id"]
    m = decode_rollout_payload(orjson.dumps(unsigned), "desired")
    assert isinstance(m, ModelDesired) and m.models["skab-pump-t2"].signature == ""


@pytest.mark.parametrize(
    "over",
    [
        {"version": "1.1"},
        {"sha256": H.upper()},
        {"deployment": 0},
        {"deployment": "7"},
        {"key_id": "xyz"},
        {"extra": 1},
    ],
)
def test_desired_rejects_bad_entries(over: dict[str, Any]) -> None:
    with pytest.raises(WireError) as exc:
        decode_rollout_payload(orjson.dumps(_desired(**over)), "desired")
    assert exc.value.reason == "invalid_payload"


def test_report_round_trip() -> None:
    report = ModelReport(
        v=1,
        gw="gw-1",
        sent_ms=5,
        groups=["pilot"],
        models={
            "skab-pump-t2": RunningModel(
                version="1.1.0", sha256=H, previous_version="1.0.0", machines=["pump-1"]
            )
        },
        results={
            "skab-pump-t2": DeployResult(
                deployment=7,
                version="1.1.0",
                status="rolled_back",
                stage="probation",
                reason="NaN",
                finished_ms=5,
                checks={"windows": 12.0},
            )
        },
    )
    assert decode_rollout_payload(encode(report), "report") == report
    with pytest.raises(WireError) as exc:
        decode_rollout_payload(b'{"v": 2, "gw": "gw-1", "sent_ms": 1}', "report")
    assert exc.value.reason == "schema_version"


def test_desired_model_requires_deployment() -> None:
    with pytest.raises(ValueError, match="deployment"):
        DesiredModel.model_validate({"version": "1.0.0", "sha256": H, "manifest_sha256": H})
