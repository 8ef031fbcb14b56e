"""Rollout logic on the registry database (no MQTT here; see
:mod:`renkei.cloud.rollout.controller`).

- :func:`create_deployment` (called by the API): resolves the target expression to the
  firm's gateways that run the model, applies pins, picks the canary wave and stores a
  ``pending`` :class:`~renkei.cloud.registry.Deployment`.
- :func:`record_report` (called by the controller for every gateway report): updates the
  fleet state and the outcome of the deployment targets the report answers.
- :func:`step` (called by the controller on every tick): advances every active deployment
  through the state machine documented in :mod:`renkei.cloud.registry.models_registry` and marks
  the gateways whose desired state changed (``FleetGateway.desired_dirty``).
- :func:`desired_state`: the :class:`renkei.core.wire.ModelDesired` payload of one gateway.

Targets (``target`` of a deployment, comma-separated): ``gateway:ID`` (that gateway; it
must run the model; pins do not apply), ``site:ID``, ``group:NAME`` (gateways whose config
lists the rollout group) and ``all`` (every gateway of the firm); the last three include
only gateways that run the model and skip those with a pin on it.

Canary: with ``canary = N`` and more than N eligible gateways, the first N (ordered by site
id, then gateway id) form wave 0; the rest (wave 1) get the desired state only after every
canary reported success. A canary failure (or a wave-0 timeout) stops the rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import CloudError
from renkei.cloud.registry import (
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    DeploymentTarget,
    FleetGateway,
    FleetModel,
    ModelRelease,
    TargetStatus,
)
from renkei.core.wire import DesiredModel, ModelDesired, ModelReport

__all__ = [
    "RolloutError",
    "TargetSpec",
    "create_deployment",
    "desired_state",
    "parse_target",
    "record_report",
    "step",
]

_ACTIVE = (DeploymentStatus.PENDING, DeploymentStatus.CANARY, DeploymentStatus.ROLLING)
_OPEN = (TargetStatus.WAITING, TargetStatus.SENT)


class RolloutError(CloudError, ValueError):
    """A deployment request that cannot be carried out.

    ``code`` is ``invalid`` (bad target expression, nothing to deploy to) or ``not_found``
    (unknown model release).
    """

    def __init__(self, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One term of a target expression."""

    kind: str
    """``gateway``, ``site``, ``group`` or ``all``."""
    value: str


def parse_target(expr: str) -> list[TargetSpec]:
    """Parse ``gateway:ID|site:ID|group:NAME|all`` terms separated by commas.

    Raises:
        RolloutError: ``invalid`` for an empty expression or an unknown term.
    """
    terms = [t.strip() for t in expr.split(",") if t.strip()]
    if not terms:
        raise RolloutError("invalid", "target is empty; use gateway:ID, site:ID, group:NAME or all")
    out = []
    for term in terms:
        if term == "all":
            out.append(TargetSpec("all", ""))
            continue
        kind, sep, value = term.partition(":")
        if not sep or kind not in ("gateway", "site", "group") or not value:
            raise RolloutError(
                "invalid",
                f"target term {term!r} is not gateway:ID, site:ID, group:NAME or all",
            )
        out.append(TargetSpec(kind, value))
    return out


def _utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; they are UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


# ------------------------------------------------------------------------ creation


def create_deployment(
    session: Session,
    *,
    firm_id: str,
    model_name: str,
    version: str | None,
    kind: DeploymentKind,
    target: str,
    canary: int,
    timeout_s: float | None,
    created_by: str,
    now: datetime,
) -> Deployment:
    """Store a ``pending`` deployment with its resolved targets (see the module docstring).

    Args:
        version: the release to run; required for ``deploy``; for ``rollback`` ``None``
            means "each gateway's ``previous_version``".
        canary: size of the canary wave (0 = none).
        timeout_s: per-wave timeout (``None`` = wait indefinitely).

    Raises:
        RolloutError: ``not_found`` (no such release), ``invalid`` (bad target, an
            explicit gateway that is unknown or does not run the model, no gateway
            matched).
    """
    specs = parse_target(target)
    if kind is DeploymentKind.DEPLOY and version is None:
        raise RolloutError("invalid", "a deployment needs a version (NAME@VERSION)")
    if version is not None and session.get(ModelRelease, (model_name, version)) is None:
        raise RolloutError("not_found", f"no published model {model_name}@{version}")
    gateways = session.scalars(select(FleetGateway).where(FleetGateway.firm_id == firm_id)).all()
    models = {
        fm.gateway_id: fm
        for fm in session.scalars(
            select(FleetModel).where(
                FleetModel.firm_id == firm_id, FleetModel.model_name == model_name
            )
        )
    }
    chosen: dict[str, tuple[FleetGateway, bool]] = {}
    problems: list[str] = []
    by_id = {g.gateway_id: g for g in gateways}
    for spec in specs:
        if spec.kind == "gateway":
            gw = by_id.get(spec.value)
            fm = models.get(spec.value)
            if gw is None:
                problems.append(f"gateway {spec.value!r} has never reported (unknown to rollout)")
            elif fm is None or fm.version is None:
                problems.append(f"gateway {spec.value!r} does not run model {model_name}")
            else:
                chosen[gw.gateway_id] = (gw, True)
            continue
        for gw in gateways:
            fm = models.get(gw.gateway_id)
            if fm is None or fm.version is None:
                continue
            if (
                spec.kind == "all"
                or (spec.kind == "site" and gw.site_id == spec.value)
                or (spec.kind == "group" and spec.value in (gw.groups or []))
            ) and gw.gateway_id not in chosen:
                chosen[gw.gateway_id] = (gw, False)
    if problems:
        raise RolloutError("invalid", "; ".join(problems), detail=problems)
    if not chosen:
        raise RolloutError(
            "invalid", f"target {target!r} matches no gateway of {firm_id} running {model_name}"
        )

    dep = Deployment(
        firm_id=firm_id,
        model_name=model_name,
        version=version,
        kind=kind,
        target=target,
        canary=canary,
        timeout_s=timeout_s,
        status=DeploymentStatus.PENDING,
        created_by=created_by,
        created_at=now,
    )
    eligible: list[DeploymentTarget] = []
    skipped: list[DeploymentTarget] = []
    for gw, explicit in sorted(chosen.values(), key=lambda c: (c[0].site_id, c[0].gateway_id)):
        fm = models[gw.gateway_id]
        t = DeploymentTarget(firm_id=firm_id, site_id=gw.site_id, gateway_id=gw.gateway_id, wave=1)
        t.version = version if version is not None else fm.previous_version
        if fm.pinned_version is not None and not explicit:
            t.status, t.reason = TargetStatus.SKIPPED, f"pinned to {fm.pinned_version}"
        elif t.version is None:
            t.status, t.reason = TargetStatus.SKIPPED, "no previous version to roll back to"
        elif session.get(ModelRelease, (model_name, t.version)) is None:
            t.status = TargetStatus.SKIPPED
            t.reason = f"{model_name}@{t.version} is not in the registry"
        if t.status is TargetStatus.SKIPPED:
            t.finished_at = now
            skipped.append(t)
        else:
            eligible.append(t)
    if 0 < canary < len(eligible):
        for t in eligible[:canary]:
            t.wave = 0
    dep.targets = eligible + skipped
    session.add(dep)
    session.flush()
    return dep


# ------------------------------------------------------------------------- reports


def record_report(
    session: Session, *, firm_id: str, site_id: str, report: ModelReport, now: datetime
) -> list[int]:
    """Store a gateway's model report; settle the deployment targets it answers.

    Returns:
        Ids of the deployments whose targets changed.
    """
    gw = session.get(FleetGateway, (firm_id, report.gw))
    if gw is None:
        gw = FleetGateway(firm_id=firm_id, gateway_id=report.gw, site_id=site_id)
        session.add(gw)
    gw.site_id = site_id
    gw.groups = list(report.groups)
    gw.reported_at = now
    gw.report = report.model_dump(mode="json")
    rows = {
        fm.model_name: fm
        for fm in session.scalars(
            select(FleetModel).where(
                FleetModel.firm_id == firm_id, FleetModel.gateway_id == report.gw
            )
        )
    }

    def row(name: str) -> FleetModel:
        fm = rows.get(name)
        if fm is None:
            fm = rows[name] = FleetModel(firm_id=firm_id, gateway_id=report.gw, model_name=name)
            session.add(fm)
        return fm

    for name, running in report.models.items():
        fm = row(name)
        fm.version, fm.sha256 = running.version, running.sha256
        fm.previous_version = running.previous_version
        fm.machines = list(running.machines)
        fm.source = running.source
    for name, fm in rows.items():
        if name not in report.models:
            fm.version = fm.sha256 = None
            fm.machines = []
    changed: list[int] = []
    for name, res in report.results.items():
        fm = row(name)
        at = datetime.fromtimestamp(res.finished_ms / 1000, UTC)
        fm.last_deployment_id, fm.last_version = res.deployment, res.version
        fm.last_status, fm.last_stage, fm.last_reason = res.status, res.stage, res.reason
        fm.last_at = at
        target = session.scalars(
            select(DeploymentTarget)
            .join(Deployment)
            .where(
                DeploymentTarget.deployment_id == res.deployment,
                DeploymentTarget.firm_id == firm_id,
                DeploymentTarget.gateway_id == report.gw,
                Deployment.model_name == name,
                DeploymentTarget.status == TargetStatus.SENT,
            )
        ).first()
        if target is None:
            continue
        ok = res.status == "succeeded"
        target.status = TargetStatus.SUCCEEDED if ok else TargetStatus.FAILED
        target.stage, target.reason = res.stage, res.reason
        target.checks = dict(res.checks) | {"status": res.status}
        target.finished_at = at
        if not ok and fm.desired_deployment_id == res.deployment:
            # What runs is what the gateway kept; make the desired state say so.
            _set_desired(session, fm, fm.version, res.deployment)
        changed.append(res.deployment)
    return changed


def _set_desired(session: Session, fm: FleetModel, version: str | None, dep_id: int) -> None:
    if version is not None and session.get(ModelRelease, (fm.model_name, version)) is None:
        version = None  # e.g. the model of the gateway config, never published
    fm.desired_version = version
    fm.desired_deployment_id = dep_id if version is not None else None
    gw = session.get(FleetGateway, (fm.firm_id, fm.gateway_id))
    if gw is not None:
        gw.desired_dirty = True


# ------------------------------------------------------------------------ stepping


def step(session: Session, *, now: datetime) -> list[int]:
    """Advance every active deployment one step (idempotent; call it often).

    Returns:
        Ids of the deployments whose status changed.
    """
    changed = []
    deps = session.scalars(
        select(Deployment).where(Deployment.status.in_(_ACTIVE)).order_by(Deployment.id)
    ).all()
    for dep in deps:
        before = dep.status
        _advance(session, dep, now)
        if dep.status is not before:
            changed.append(dep.id)
    return changed


def _advance(session: Session, dep: Deployment, now: datetime) -> None:
    if dep.status is DeploymentStatus.PENDING:
        wave0 = [t for t in dep.targets if t.wave == 0 and t.status is TargetStatus.WAITING]
        if wave0:
            _send_wave(session, dep, wave0, now)
            dep.status = DeploymentStatus.CANARY
        else:
            _send_wave(session, dep, _waiting(dep, 1), now)
            dep.status = DeploymentStatus.ROLLING
    if dep.status is DeploymentStatus.CANARY:
        canaries = [t for t in dep.targets if t.wave == 0]
        _expire(dep, canaries, now)
        failed = [t for t in canaries if t.status is TargetStatus.FAILED]
        if failed:
            for t in _waiting(dep, 1):
                t.status, t.reason, t.finished_at = (
                    TargetStatus.CANCELLED,
                    "rollout stopped: a canary failed",
                    now,
                )
            dep.status = DeploymentStatus.STOPPED
            dep.reason = "canary failed: " + "; ".join(
                f"{t.gateway_id}: {t.reason or t.stage}" for t in failed
            )
            dep.finished_at = now
            return
        if all(t.status.final for t in canaries):
            _send_wave(session, dep, _waiting(dep, 1), now)
            dep.status = DeploymentStatus.ROLLING
    if dep.status is DeploymentStatus.ROLLING:
        _expire(dep, [t for t in dep.targets if t.wave == 1], now)
        if all(t.status.final for t in dep.targets):
            failed = [t for t in dep.targets if t.status is TargetStatus.FAILED]
            dep.status = DeploymentStatus.FAILED if failed else DeploymentStatus.SUCCEEDED
            ok = sum(t.status is TargetStatus.SUCCEEDED for t in dep.targets)
            dep.reason = f"{ok} succeeded" + (
                "; failed: " + "; ".join(f"{t.gateway_id}: {t.reason}" for t in failed)
                if failed
                else ""
            )
            dep.finished_at = now


def _waiting(dep: Deployment, wave: int) -> list[DeploymentTarget]:
    return [t for t in dep.targets if t.wave == wave and t.status is TargetStatus.WAITING]


def _expire(dep: Deployment, targets: Sequence[DeploymentTarget], now: datetime) -> None:
    started = _utc(dep.wave_started_at)
    if dep.timeout_s is None or started is None:
        return
    if now - started < timedelta(seconds=dep.timeout_s):
        return
    for t in targets:
        if t.status is TargetStatus.SENT:
            t.status, t.stage, t.finished_at = TargetStatus.FAILED, "timeout", now
            t.reason = f"no report within {dep.timeout_s:g} s"


def _send_wave(
    session: Session, dep: Deployment, targets: Sequence[DeploymentTarget], now: datetime
) -> None:
    dep.wave_started_at = now
    for t in targets:
        newer = session.scalars(
            select(DeploymentTarget.id)
            .join(Deployment)
            .where(
                DeploymentTarget.firm_id == t.firm_id,
                DeploymentTarget.gateway_id == t.gateway_id,
                Deployment.model_name == dep.model_name,
                Deployment.id > dep.id,
                DeploymentTarget.status != TargetStatus.SKIPPED,
            )
        ).first()
        if newer is not None:
            t.status, t.finished_at = TargetStatus.SUPERSEDED, now
            t.reason = "a newer deployment of this model reached the gateway first"
            continue
        for old in session.scalars(
            select(DeploymentTarget)
            .join(Deployment)
            .where(
                DeploymentTarget.firm_id == t.firm_id,
                DeploymentTarget.gateway_id == t.gateway_id,
                Deployment.model_name == dep.model_name,
                Deployment.id < dep.id,
                DeploymentTarget.status.in_(_OPEN),
            )
        ):
            old.status, old.finished_at = TargetStatus.SUPERSEDED, now
            old.reason = f"superseded by deployment {dep.id}"
        fm = session.get(FleetModel, (t.firm_id, t.gateway_id, dep.model_name))
        if fm is None:  # pragma: no cover - resolution required the row
            t.status, t.reason, t.finished_at = TargetStatus.FAILED, "gateway unknown", now
            continue
        _set_desired(session, fm, t.version, dep.id)
        t.status, t.sent_at = TargetStatus.SENT, now


# ------------------------------------------------------------------------ payloads


def desired_state(
    session: Session, *, firm_id: str, gateway_id: str, now_ms: int
) -> tuple[str, ModelDesired] | None:
    """``(site_id, payload)`` of a gateway's desired state, or ``None`` if it is unknown."""
    gw = session.get(FleetGateway, (firm_id, gateway_id))
    if gw is None:
        return None
    entries: dict[str, DesiredModel] = {}
    for fm in session.scalars(
        select(FleetModel).where(
            FleetModel.firm_id == firm_id,
            FleetModel.gateway_id == gateway_id,
            FleetModel.desired_version.is_not(None),
        )
    ):
        assert fm.desired_version is not None
        rel = session.get(ModelRelease, (fm.model_name, fm.desired_version))
        if rel is None or fm.desired_deployment_id is None:
            continue
        entries[fm.model_name] = DesiredModel(
            version=rel.version,
            sha256=rel.sha256,
            manifest_sha256=rel.manifest_sha256,
            key_id=rel.key_id,
            signature=rel.signature,
            deployment=fm.desired_deployment_id,
        )
    return gw.site_id, ModelDesired(v=1, gw=gateway_id, sent_ms=now_ms, models=entries)
