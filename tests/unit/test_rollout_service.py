"""The deployment state machine on the registry database (no MQTT): target resolution, pins,
canary waves, reports, supersession, timeouts, rollback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from renkei.cloud.registry import (
    Base,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Firm,
    FleetGateway,
    FleetModel,
    ModelRelease,
    ModelSigningKey,
    TargetStatus,
    make_engine,
)
from renkei.cloud.rollout.service import (
    RolloutError,
    create_deployment,
    desired_state,
    parse_target,
    record_report,
    step,
)
from renkei.core.wire import DeployResult, ModelReport, RunningModel

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
NAME = "skab-pump-t2"


def _sha(version: str) -> str:
    return (version.replace(".", "").replace("-", "") * 64)[:64].replace("n", "0")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Firm(id="acme", name="Acme", region="kansai"))
        s.add(ModelSigningKey(key_id="0" * 16, public_key="ed25519:x"))
        s.flush()
        for v in ("1.0.0", "1.1.0", "1.2.0"):
            s.add(
                ModelRelease(
                    name=NAME,
                    version=v,
                    sha256=_sha(v),
                    manifest_sha256="f" * 64,
                    key_id="0" * 16,
                    signature="sig-" + v,
                    manifest=b"{}",
                    onnx=b"onnx",
                    size_bytes=4,
                    threshold=1.0,
                )
            )
        s.flush()
        for gw, site, groups in (
            ("gw-a", "s1", ["pilot"]),
            ("gw-b", "s1", []),
            ("gw-c", "s2", []),
        ):
            _report(s, gw, site, "1.0.0", groups=groups)
        _report(s, "gw-other", "s1", None)  # runs no model of this name
        s.commit()
        yield s
    engine.dispose()


def _report(
    s: Session,
    gw: str,
    site: str,
    version: str | None,
    *,
    previous: str | None = None,
    groups: list[str] | None = None,
    result: tuple[int, str, str] | None = None,
) -> list[int]:
    models = {}
    if version is not None:
        models[NAME] = RunningModel(
            version=version, sha256=_sha(version), previous_version=previous, machines=["m1"]
        )
    results = {}
    if result is not None:
        dep, ver, status = result
        results[NAME] = DeployResult(
            deployment=dep,
            version=ver,
            status=status,
            stage="done" if status == "succeeded" else "shadow",
            reason="" if status == "succeeded" else "NaN scores",
            finished_ms=1_700_000_000_000,
        )
    report = ModelReport(v=1, gw=gw, sent_ms=1, groups=groups or [], models=models, results=results)
    return record_report(s, firm_id="acme", site_id=site, report=report, now=T0)


def _deploy(s: Session, target: str, version: str | None = "1.1.0", **kw: object) -> Deployment:
    args: dict[str, object] = {
        "firm_id": "acme",
        "model_name": NAME,
        "version": version,
        "kind": DeploymentKind.DEPLOY,
        "target": target,
        "canary": 0,
        "timeout_s": None,
        "created_by": "k",
        "now": T0,
    }
    args.update(kw)
    dep = create_deployment(s, **args)  # type: ignore[arg-type]
    s.commit()
    return dep


def _status(dep: Deployment) -> DeploymentStatus:
    return dep.status


def _statuses(dep: Deployment) -> dict[str, TargetStatus]:
    return {t.gateway_id: t.status for t in dep.targets}


def test_parse_target() -> None:
    specs = parse_target("gateway:gw-a, site:s1,group:pilot,all")
    assert [(t.kind, t.value) for t in specs] == [
        ("gateway", "gw-a"),
        ("site", "s1"),
        ("group", "pilot"),
        ("all", ""),
    ]
    for bad in ("", "gw-a", "host:x", "site:"):
        with pytest.raises(RolloutError):
            parse_target(bad)


def test_resolution_by_site_group_all_and_errors(session: Session) -> None:
    assert set(_statuses(_deploy(session, "site:s1"))) == {"gw-a", "gw-b"}
    assert set(_statuses(_deploy(session, "group:pilot"))) == {"gw-a"}
    assert set(_statuses(_deploy(session, "all"))) == {"gw-a", "gw-b", "gw-c"}
    with pytest.raises(RolloutError, match="never reported"):
        _deploy(session, "gateway:gw-zz")
    with pytest.raises(RolloutError, match="does not run"):
        _deploy(session, "gateway:gw-other")
    with pytest.raises(RolloutError, match="matches no gateway"):
        _deploy(session, "site:s9")
    with pytest.raises(RolloutError) as exc:
        _deploy(session, "all", version="9.9.9")
    assert exc.value.code == "not_found"


def test_canary_success_then_rest(session: Session) -> None:
    dep = _deploy(session, "all", canary=1)
    assert [(t.gateway_id, t.wave) for t in dep.targets] == [
        ("gw-a", 0),
        ("gw-b", 1),
        ("gw-c", 1),
    ]
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.CANARY
    assert _statuses(dep) == {
        "gw-a": TargetStatus.SENT,
        "gw-b": TargetStatus.WAITING,
        "gw-c": TargetStatus.WAITING,
    }
    found = desired_state(session, firm_id="acme", gateway_id="gw-a", now_ms=1)
    assert found is not None
    site, desired = found
    entry = desired.models[NAME]
    assert (site, entry.version, entry.deployment, entry.signature) == (
        "s1",
        "1.1.0",
        dep.id,
        "sig-1.1.0",
    )
    assert desired_state(session, firm_id="acme", gateway_id="gw-b", now_ms=1) is not None
    assert session.get(FleetGateway, ("acme", "gw-a")).desired_dirty  # type: ignore[union-attr]
    assert not session.get(FleetGateway, ("acme", "gw-b")).desired_dirty  # type: ignore[union-attr]
    step(session, now=T0)  # nothing reported yet: nothing moves
    assert _status(dep) is DeploymentStatus.CANARY
    _report(session, "gw-a", "s1", "1.1.0", previous="1.0.0", result=(dep.id, "1.1.0", "succeeded"))
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.ROLLING
    assert _statuses(dep)["gw-b"] is TargetStatus.SENT
    for gw, site in (("gw-b", "s1"), ("gw-c", "s2")):
        _report(session, gw, site, "1.1.0", result=(dep.id, "1.1.0", "succeeded"))
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.SUCCEEDED
    assert dep.finished_at is not None and dep.reason == "3 succeeded"


def test_canary_failure_stops_the_rollout(session: Session) -> None:
    dep = _deploy(session, "all", canary=1)
    step(session, now=T0)
    _report(session, "gw-a", "s1", "1.0.0", result=(dep.id, "1.1.0", "rejected"))
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.STOPPED
    assert "gw-a" in dep.reason and "NaN" in dep.reason
    assert _statuses(dep) == {
        "gw-a": TargetStatus.FAILED,
        "gw-b": TargetStatus.CANCELLED,
        "gw-c": TargetStatus.CANCELLED,
    }
    fm = session.get(FleetModel, ("acme", "gw-a", NAME))
    assert fm is not None
    # the desired state follows what the gateway kept; the others never got one
    assert (fm.desired_version, fm.last_status, fm.last_version) == ("1.0.0", "rejected", "1.1.0")
    fb = session.get(FleetModel, ("acme", "gw-b", NAME))
    assert fb is not None and fb.desired_version is None


def test_failure_outside_the_canary_fails_the_deployment(session: Session) -> None:
    dep = _deploy(session, "site:s1")
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.ROLLING
    _report(session, "gw-a", "s1", "1.1.0", result=(dep.id, "1.1.0", "succeeded"))
    _report(session, "gw-b", "s1", "1.0.0", result=(dep.id, "1.1.0", "rolled_back"))
    step(session, now=T0)
    assert _status(dep) is DeploymentStatus.FAILED
    assert "gw-b" in dep.reason


def test_reports_are_idempotent_and_ignore_other_deployments(session: Session) -> None:
    dep = _deploy(session, "gateway:gw-a")
    step(session, now=T0)
    assert (
        _report(session, "gw-a", "s1", "1.0.0", result=(dep.id + 100, "1.1.0", "succeeded")) == []
    )
    assert _report(session, "gw-a", "s1", "1.1.0", result=(dep.id, "1.1.0", "succeeded")) == [
        dep.id
    ]
    assert _report(session, "gw-a", "s1", "1.1.0", result=(dep.id, "1.1.0", "succeeded")) == []


def test_timeout_fails_unanswered_gateways(session: Session) -> None:
    dep = _deploy(session, "all", canary=1, timeout_s=60.0)
    step(session, now=T0)
    step(session, now=T0 + timedelta(seconds=59))
    assert _status(dep) is DeploymentStatus.CANARY
    step(session, now=T0 + timedelta(seconds=61))
    assert _status(dep) is DeploymentStatus.STOPPED
    assert dep.targets[0].stage == "timeout"


def test_newer_deployment_supersedes_open_targets(session: Session) -> None:
    old = _deploy(session, "all", canary=1)
    step(session, now=T0)
    new = _deploy(session, "gateway:gw-b", version="1.2.0")
    step(session, now=T0)
    # gw-b of the old deployment is superseded when the new one is sent to it
    assert _statuses(old)["gw-b"] is TargetStatus.SUPERSEDED
    assert _statuses(new)["gw-b"] is TargetStatus.SENT
    _report(session, "gw-a", "s1", "1.1.0", result=(old.id, "1.1.0", "succeeded"))
    step(session, now=T0)
    # the old rollout continues with gw-c only; gw-b keeps the newer desired version
    assert _statuses(old)["gw-c"] is TargetStatus.SENT
    fb = session.get(FleetModel, ("acme", "gw-b", NAME))
    assert fb is not None and fb.desired_version == "1.2.0"


def test_pins_skip_site_deployments_but_not_explicit_ones(session: Session) -> None:
    fm = session.get(FleetModel, ("acme", "gw-b", NAME))
    assert fm is not None
    fm.pinned_version = "1.0.0"
    session.commit()
    dep = _deploy(session, "site:s1")
    assert _statuses(dep)["gw-b"] is TargetStatus.SKIPPED
    assert "pinned to 1.0.0" in next(t.reason for t in dep.targets if t.gateway_id == "gw-b")
    explicit = _deploy(session, "gateway:gw-b")
    assert _statuses(explicit)["gw-b"] is TargetStatus.WAITING


def test_rollback_goes_to_each_previous_version(session: Session) -> None:
    _report(session, "gw-a", "s1", "1.1.0", previous="1.0.0")
    _report(session, "gw-b", "s1", "1.2.0", previous="1.1.0")
    dep = _deploy(session, "all", version=None, kind=DeploymentKind.ROLLBACK)
    versions = {t.gateway_id: (t.version, t.status) for t in dep.targets}
    assert versions == {
        "gw-a": ("1.0.0", TargetStatus.WAITING),
        "gw-b": ("1.1.0", TargetStatus.WAITING),
        "gw-c": (None, TargetStatus.SKIPPED),  # runs its first version
    }
    with pytest.raises(RolloutError, match="needs a version"):
        _deploy(session, "all", version=None)


def test_gateway_that_stops_running_a_model(session: Session) -> None:
    _report(session, "gw-a", "s1", None)
    fm = session.get(FleetModel, ("acme", "gw-a", NAME))
    assert fm is not None and fm.version is None
    assert set(_statuses(_deploy(session, "all"))) == {"gw-b", "gw-c"}
