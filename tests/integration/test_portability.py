"""Firm export/import round trips with a real SQLite registry and a real InfluxDB.

The source install holds three firms: ``acme`` (exported), ``beta`` and ``gamma`` (its
partners, with data of their own that must never leave with acme's archive). Time series
are written exactly as the ingest writes them (:func:`renkei.cloud.ingest.lineproto.encode_message`
on wire payloads, precision ms) plus one hand-made measurement with every field type and
edge values at nanosecond precision.

Points are compared with plain InfluxQL (``epoch=ns``, one query per field and type with an
explicit ``::type`` cast), independently of the code under test: a value stored with another
type in the target would not be returned by its cast, so equal answers mean equal values
*and* types.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from harness.services import InfluxDB
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.ingest.lineproto import encode_message
from renkei.cloud.portability import (
    ArchiveError,
    ImportConflict,
    MissingPartners,
    export_firm,
    import_archive,
)
from renkei.cloud.portability.tables import SPECS, firm_filter
from renkei.cloud.registry import (
    ApiCredential,
    AssignmentStatus,
    AuditEvent,
    Base,
    CapacityBooking,
    DeliveryStatus,
    Deployment,
    DeploymentKind,
    DeploymentTarget,
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    FleetGateway,
    FleetModel,
    GatewayEnrolment,
    GatewayStatus,
    GranteeKind,
    NotificationChannel,
    NotificationDelivery,
    NotificationSettings,
    OperatorCount,
    PartnerGroup,
    PartnerGroupMember,
    Role,
    ShareGranularity,
    SharingGrant,
    Site,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
    VolumeUnit,
    import_document,
    issue_key,
    make_engine,
    session_scope,
    verify_key,
)
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.core.wire import gateway_topic, machine_topic

REPO = Path(__file__).resolve().parents[2]
T0_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NOW_MS = T0_MS + 400 * 86_400_000
SECRET_MARKERS = (
    "BETA-SECRET-REF",
    "Beta plant",
    "beta-mold-1",
    "beta-req-1",
    "GAMMA-SECRET",
    "gw-b",
)


# --------------------------------------------------------------------------- source data


def _imm(mid: str, firm: str, line: str, clamp: float) -> dict[str, Any]:
    return {
        "id": mid,
        "firm_id": firm,
        "line_id": line,
        "name": f"IMM {mid}",
        "process": "injection_molding",
        "clamp_force_kN": clamp,
        "tie_bar_h_mm": 560.0,
        "tie_bar_v_mm": 510.0,
        "min_mold_height_mm": 200.0,
        "max_mold_height_mm": 550.0,
        "shot_capacity_g": 420.5,
        "locating_ring_mm": 100.0,
    }


def _mold(mid: str, firm: str) -> dict[str, Any]:
    return {
        "id": mid,
        "firm_id": firm,
        "name": f"Mold {mid}",
        "width_mm": 400.0,
        "height_mm": 350.0,
        "thickness_mm": 300.0,
        "weight_kg": 820.25,
        "required_clamp_force_kN": 1100.0,
        "shot_weight_g": 180.3,
        "resin": "PP",
        "cavities": 4,
        "locating_ring_mm": 100.0,
        "cycle_time_s": 32.5,
        "shot_count": 123_456,
    }


def build_registry(url: str) -> dict[str, str]:
    """Three firms with every kind of row; returns the API keys issued (name -> key)."""
    upgrade(url)
    engine = make_engine(url)
    keys: dict[str, str] = {}
    calendar = {
        "weekly_hours": [16, 16, 16, 16, 12.5, 0, 0],
        "timezone": "Asia/Tokyo",
        "holidays": ["2026-01-01", "2026-01-02"],
    }
    doc = {
        "firms": [
            {"id": "acme", "name": "Acme Plastics", "region": "kansai", "bpnl": "BPNL00000003AYRE"},
            {"id": "beta", "name": "Beta Molding", "region": "kansai"},
            {"id": "gamma", "name": "Gamma Press GAMMA-SECRET", "region": "kanto"},
        ],
        "sites": [
            {
                "id": "acme-s1",
                "firm_id": "acme",
                "name": "Higashi-Osaka",
                "address": "1-2-3 Takaida, 東大阪市",
                "latitude_deg": 34.6791,
                "longitude_deg": 135.6009,
                "prefecture": "Osaka",
                "region": "kansai",
                "resins": ["PP", "ABS", "PA66-GF30"],
                "certifications": ["ISO9001", "IATF16949"],
            },
            {
                "id": "acme-s2",
                "firm_id": "acme",
                "name": "Yao",
                "latitude_deg": 34.6268,
                "longitude_deg": 135.6010,
                "region": "kansai",
            },
            {
                "id": "beta-private-site",
                "firm_id": "beta",
                "name": "Beta plant",
                "latitude_deg": 34.7,
                "longitude_deg": 135.5,
                "region": "kansai",
            },
            {
                "id": "gamma-s1",
                "firm_id": "gamma",
                "name": "Gamma plant",
                "latitude_deg": 35.6,
                "longitude_deg": 139.7,
                "region": "kanto",
            },
        ],
        "lines": [
            {"id": "acme-l1", "site_id": "acme-s1", "name": "Line 1", "area": "molding"},
            {"id": "acme-l2", "site_id": "acme-s2", "name": "Line 2", "area": "press"},
            {"id": "beta-l1", "site_id": "beta-private-site", "name": "Line 1"},
        ],
        "machines": [
            _imm("acme-m1", "acme", "acme-l1", 1300.0),
            _imm("acme-m2", "acme", "acme-l1", 1800.0),
            {
                "id": "acme-p1",
                "firm_id": "acme",
                "line_id": "acme-l2",
                "name": "Press 1",
                "process": "press",
                "tonnage_kN": 2000.0,
                "bed_width_mm": 1200.0,
                "bed_depth_mm": 800.0,
            },
            _imm("beta-m1", "beta", "beta-l1", 1500.0),
        ],
        "molds": [_mold("acme-mold-1", "acme"), _mold("acme-mold-2", "acme")]
        + [_mold("beta-mold-1", "beta")],
    }
    with session_scope(engine) as s:
        import_document(s, doc)
        s.get_one(Site, "acme-s1").calendar = calendar
        keys["acme-operator"] = issue_key(s, firm_id="acme", role=Role.OPERATOR, label="ERP")
        keys["acme-engineer"] = issue_key(s, firm_id="acme", role=Role.ENGINEER)
        keys["beta-operator"] = issue_key(s, firm_id="beta", role=Role.OPERATOR)
        revoked = issue_key(s, firm_id="acme", role=Role.PARTNER, label="old")
        s.get_one(ApiCredential, revoked[3:].split("_")[0]).revoked = True

        # Policies: acme's own group (members beta, gamma) and grants; beta's group with acme.
        s.add(PartnerGroup(id="acme-circle", owner_firm_id="acme", name="supplier circle"))
        s.add(PartnerGroup(id="beta-circle", owner_firm_id="beta", name="beta friends"))
        s.flush()
        s.add_all(
            [
                PartnerGroupMember(group_id="acme-circle", firm_id="beta"),
                PartnerGroupMember(group_id="acme-circle", firm_id="gamma"),
                PartnerGroupMember(group_id="beta-circle", firm_id="acme"),
            ]
        )
        s.add_all(
            [
                SharingGrant(
                    owner_firm_id="acme",
                    grantee_kind=GranteeKind.FIRM,
                    grantee_id="beta",
                    capability_classes=["injection_molding:1000-2000kN"],
                    granularity=ShareGranularity.DAY,
                    machine_detail=True,
                    expires_at=datetime(2027, 3, 31, 15, 0, tzinfo=UTC),
                ),
                SharingGrant(
                    owner_firm_id="acme", grantee_kind=GranteeKind.GROUP, grantee_id="acme-circle"
                ),
                SharingGrant(
                    owner_firm_id="acme", grantee_kind=GranteeKind.SUPPORTERS, grantee_id="kansai"
                ),
                SharingGrant(
                    owner_firm_id="beta", grantee_kind=GranteeKind.FIRM, grantee_id="acme"
                ),
            ]
        )
        # Bookings, a disruption and a takeover request with jobs and assignments.
        s.add_all(
            [
                CapacityBooking(
                    firm_id="acme",
                    machine_id="acme-m1",
                    start=date(2026, 11, 23),
                    end=date(2026, 12, 4),
                    hours_per_day=12.5,
                    reference="PO-4711",
                ),
                CapacityBooking(
                    firm_id="acme",
                    machine_id="acme-p1",
                    start=date(2026, 11, 30),
                    end=date(2026, 11, 30),
                    hours_per_day=24.0,
                ),
                CapacityBooking(
                    firm_id="beta",
                    machine_id="beta-m1",
                    start=date(2026, 11, 23),
                    end=date(2026, 11, 27),
                    hours_per_day=8.0,
                    reference="BETA-SECRET-REF",
                ),
            ]
        )
        disruption = Disruption(
            firm_id="acme",
            site_id="acme-s1",
            status=DisruptionStatus.CONFIRMED,
            source=DisruptionSource.LAST_WILL,
            start=datetime(2026, 11, 20, 23, 14, 5, 123456, tzinfo=UTC),
            radius_km=25.0,
            note="earthquake: mold shop flooded",
            detail={"gateways": [{"gw": "gw-1", "offline_at_ms": 1795216445123}], "score": 0.8},
            decided_at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC),
            decided_by="abc123",
        )
        s.add(disruption)
        s.flush()
        request = TakeoverRequest(
            id="acme-req-1",
            firm_id="acme",
            disruption_id=disruption.id,
            origin_site_id="acme-s1",
            window_start=date(2026, 11, 23),
            window_end=date(2026, 12, 21),
            zone_radius_km=25.0,
            revision=2,
            summary={"coverage": 0.75, "unmet_parts": 1200},
            created_by="abc123",
        )
        request.jobs = [
            TakeoverJob(
                job_id="J1",
                part_id="P-100",
                mold_id="acme-mold-1",
                weekly_volume=5000,
                due_date=date(2026, 12, 18),
                required_certifications=["IATF16949"],
                needed_parts=20000,
                covered_parts=15000,
                unmet=[{"parts": 5000, "reason": "no_capacity"}],
            ),
            TakeoverJob(
                job_id="J2",
                part_id="P-200",
                mold_id="acme-mold-2",
                resin="ABS",
                weekly_volume=900,
                volume_unit=VolumeUnit.SHOTS,
            ),
        ]
        request.assignments = [
            TakeoverAssignment(
                job_id="J1",
                partner_firm_id="beta",
                site_id="beta-private-site",
                machine_id="beta-m1",
                hours=61.5,
                parts=9000,
                transport_km=12.3,
                revision=1,
                status=AssignmentStatus.DECLINED,
                responded_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
                responded_by="beta-key",
                note="no dryer free",
            ),
            TakeoverAssignment(
                job_id="J1",
                partner_firm_id="gamma",
                site_id="gamma-s1",
                machine_id="gamma-m1",
                hours=40.0,
                parts=6000,
                transport_km=480.1,
                revision=2,
                status=AssignmentStatus.ACCEPTED,
            ),
            TakeoverAssignment(
                job_id="J2",
                partner_firm_id="beta",
                site_id="beta-private-site",
                machine_id="beta-m1",
                hours=10.0,
                parts=900,
                transport_km=12.3,
                revision=2,
            ),
        ]
        s.add(request)
        beta_request = TakeoverRequest(
            id="beta-req-1",
            firm_id="beta",
            origin_site_id="beta-private-site",
            window_start=date(2026, 11, 23),
            window_end=date(2026, 11, 30),
        )
        beta_request.jobs = [
            TakeoverJob(job_id="B1", part_id="BP", mold_id="beta-mold-1", weekly_volume=100)
        ]
        beta_request.assignments = [
            TakeoverAssignment(
                job_id="B1",
                partner_firm_id="acme",
                site_id="acme-s1",
                machine_id="acme-m2",
                hours=3.0,
                parts=100,
                transport_km=12.3,
            )
        ]
        s.add(beta_request)
        # Gateways, audit log, rollout state.
        s.add_all(
            [
                GatewayStatus(
                    firm_id="acme",
                    site_id="acme-s1",
                    gateway_id="gw-1",
                    online=False,
                    changed_at=datetime(2026, 11, 20, 23, 14, 5, tzinfo=UTC),
                    birth={"config_version": "c7", "models": {"skab": "1.2.0"}},
                ),
                GatewayStatus(firm_id="acme", site_id="acme-s2", gateway_id="gw-2", online=True),
                GatewayStatus(
                    firm_id="beta", site_id="beta-private-site", gateway_id="gw-b", online=True
                ),
                GatewayEnrolment(
                    username="gw-1",
                    firm_id="acme",
                    site="acme-s1",
                    gateway_id="gw-1",
                    machines=[["molding", "l1", "acme-m1"]],
                    token_sha256="a" * 64,
                    token_expires_at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
                    token_used_at=datetime(2026, 11, 20, 9, 5, tzinfo=UTC),
                ),
                GatewayEnrolment(
                    username="gw-b",
                    firm_id="beta",
                    site="beta-private-site",
                    gateway_id="gw-b",
                    machines=[["press", "l9", "beta-m1"]],
                    token_expires_at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
                ),
            ]
        )
        for i, (owner, reader) in enumerate(
            [("acme", "beta"), ("acme", "gamma"), ("acme", "beta"), ("beta", "acme")]
        ):
            s.add(
                AuditEvent(
                    at=datetime(2026, 11, 22, 10, i, tzinfo=UTC),
                    owner_firm_id=owner,
                    reader_firm_id=reader,
                    reader_key_id=f"key{i}",
                    reader_role="partner",
                    action="capacity.search",
                    resource="/api/v1/capacity/search",
                    detail={"classes": ["injection_molding"], "machines": i, "ratio": 0.1},
                )
            )
        deployment = Deployment(
            firm_id="acme",
            model_name="skab",
            version="1.2.0",
            kind=DeploymentKind.DEPLOY,
            target="site:acme-s1",
            canary=1,
            timeout_s=600.0,
        )
        s.add(deployment)
        s.flush()
        s.add(
            DeploymentTarget(
                deployment_id=deployment.id,
                firm_id="acme",
                site_id="acme-s1",
                gateway_id="gw-1",
                version="1.2.0",
                wave=0,
                checks={"latency_ms": 3.5},
            )
        )
        s.add(FleetGateway(firm_id="acme", gateway_id="gw-1", site_id="acme-s1", groups=["a"]))
        s.add(
            FleetModel(
                firm_id="acme",
                gateway_id="gw-1",
                model_name="skab",
                version="1.1.0",
                desired_version="1.2.0",
                desired_deployment_id=deployment.id,
                machines=["acme-m1"],
            )
        )
        s.add(
            NotificationSettings(
                firm_id="acme", language="en", email_to=["ops@acme.example"], line_to=["U1"]
            )
        )
        s.add(
            NotificationDelivery(
                firm_id="acme",
                event="offered",
                reference="tko-1",
                channel=NotificationChannel.EMAIL,
                target="o***@acme.example",
                status=DeliveryStatus.SENT,
            )
        )
        s.add(
            OperatorCount(
                firm_id="acme",
                machine_id="acme-m1",
                start=datetime(2026, 11, 22, 23, tzinfo=UTC),
                end=datetime(2026, 11, 23, 7, tzinfo=UTC),
                good=1180,
                reject=20,
                reject_reason="flash",
                recorded_by="k1",
            )
        )
    engine.dispose()
    return keys


# --------------------------------------------------------------------------- time series


def _machine(
    firm: str, site: str, machine: str, kind: str, seq: int, ts: list[int], **fields: Any
) -> tuple[str, bytes]:
    topic = machine_topic(
        firm=firm, site=site, area="molding", line="l1", machine=machine, kind=kind
    )
    payload = {
        "v": 1,
        "gw": f"gw-{firm}",
        "seq": seq,
        "sent_ms": ts[-1],
        "kind": kind,
        "ts_ms": ts,
        "fields": fields,
        "tags": {"mold": "m-1"} if kind == "shot" else {},
    }
    return topic, orjson.dumps(payload)


def ingest_messages(firm: str, scale: int) -> Iterator[tuple[str, bytes]]:
    """Wire messages as a firm's gateways would send them (``scale`` x 100 telemetry rows)."""
    site = f"{firm}-s1"
    seq = 0
    for m in range(3 if firm == "acme" else 1):
        machine = f"{firm}-m{m + 1}"
        for batch in range(scale):
            ts = [T0_MS + (batch * 100 + i) * 10_000 + m for i in range(100)]
            temps = [20.0 + i * 0.1 + m for i in range(100)]
            pressures: list[float | None] = [None if i % 7 == 0 else 1e-3 * i for i in range(100)]
            yield _machine(
                firm,
                site,
                machine,
                "telemetry",
                seq,
                ts,
                oil_temp_C=temps,
                pressure_bar=pressures,
                current_A=[float(i % 5) for i in range(100)],
            )
            seq += 1
        ts = [T0_MS + i * 60_000 for i in range(50)]
        yield _machine(firm, site, machine, "anomaly", seq, ts, score=[i / 49 for i in range(50)])
        seq += 1
        yield _machine(firm, site, machine, "shot", seq, ts, part_weight_g=[180.3] * 50)
        seq += 1
    events = [
        {
            "t_ms": T0_MS + i * 1000,
            "code": "anomaly_onset",
            "severity": "warning",
            "message": f'line one\nline "two" with back\\slash, = and spaces #{i}',
        }
        for i in range(20)
    ]
    payload = {"v": 1, "gw": f"gw-{firm}", "seq": seq, "sent_ms": T0_MS, "kind": "event"}
    yield (
        machine_topic(
            firm=firm, site=site, area="molding", line="l1", machine=f"{firm}-m1", kind="event"
        ),
        orjson.dumps({**payload, "events": events}),
    )
    for i in range(10):
        state = {
            "v": 1,
            "gw": f"gw-{firm}",
            "online": i % 2 == 0,
            "sent_ms": T0_MS + i * 3_600_000,
            "config_version": f"c{i}",
            "agent_version": "0.1.0",
            "models": {"skab": "1.2.0", "weird.name-1_x": "v1"},
        }
        yield (
            gateway_topic(firm=firm, site=site, gateway=f"gw-{firm}", kind="state"),
            orjson.dumps(state),
        )
        health = {
            "v": 1,
            "gw": f"gw-{firm}",
            "seq": i,
            "sent_ms": T0_MS + i * 60_000,
            "outbox_backlog": i * 3,
            "outbox_bytes": i * 1024,
            "dropped_total": 0,
            "published_total": 2**62 + i,
        }
        yield (
            gateway_topic(firm=firm, site=site, gateway=f"gw-{firm}", kind="health"),
            orjson.dumps(health),
        )


def custom_points(firm: str) -> bytes:
    """Every field type and edge values, nanosecond timestamps, escaped tag values."""
    floats = [0.1, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 1e20, 2.0**53 + 2, -123.456]
    lines = []
    for i, f in enumerate(floats):
        s = ["plain", 'q"uote', "back\\slash", "new\nline", "日本語", "a,b=c d", "", "x" * 300][i]
        lines.append(
            f"custom,firm={firm},site=s\\ 1,kind=a\\,b\\=c "
            f"f={f!r},i={[-(2**63), 2**63 - 1, 0, -1, 42, 7, 8, 9][i]}i,"
            f"b={'true' if i % 2 else 'false'},"
            f's="{s.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}" '
            f"{-(10**9) + 123 if i == 0 else 1_700_000_000_123_456_789 + i}"
        )
    # Field sparsity: a point with only a bool, another with only a string.
    lines.append(f"custom,firm={firm},site=s2 b=true 1700000000999999999")
    lines.append(f'custom,firm={firm},site=s2 s="only" 1700000001000000001')
    # No string field: exported column by column (the fast path), same edge values.
    for i, f in enumerate(floats * 3):
        fields = [f"f={f!r}", f"i={[-(2**63), 2**63 - 1, -1, 0][i % 4]}i", f"b={i % 2 == 0}"]
        present = ",".join(x for j, x in enumerate(fields) if (i + j) % 5 != 4)
        lines.append(f"numeric,firm={firm},m=x {present.lower()} {1_700_000_000_000_000_000 + i}")
    return ("\n".join(lines) + "\n").encode()


def build_timeseries(settings: InfluxSettings, *, scale: int = 5) -> None:
    """acme's and beta's points (same measurements, same times) plus a beta-only one."""
    store = InfluxStore(settings=settings)
    try:
        store.ensure_database()
        for firm in ("acme", "beta"):
            body = b"".join(
                encode_message(t, p, now_ms=NOW_MS).body for t, p in ingest_messages(firm, scale)
            )
            store.write_lines(body, precision="ms")
            store.write_lines(custom_points(firm), precision="ns")
        store.write_lines(b"beta_only,firm=beta,site=x v=1i 1700000000000000000\n", precision="ns")
        store.write_lines(b"ingest_deadletters,reason=x,worker=w count=1i 1700000000000\n")
    finally:
        store.close()


# --------------------------------------------------------------------------- comparison


_HTTP = httpx.Client(timeout=60)


def _query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    r = _HTTP.post(f"{url}/query", data={"db": db, "q": q, "epoch": "ns"})
    r.raise_for_status()
    # The stdlib parser with a hook keeps -0.0 distinct from 0 (orjson would not).
    body = json.loads(r.text, parse_int=lambda s: "-0" if s == "-0" else int(s))
    result = body["results"][0]
    assert "error" not in result, result
    series: list[dict[str, Any]] = result.get("series") or []
    return series


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def points_of(url: str, db: str, firm: str) -> dict[tuple[Any, ...], Any]:
    """(measurement, tags, time, field, type) -> value of every point tagged firm=firm."""
    out: dict[tuple[Any, ...], Any] = {}
    where = f"\"firm\" = '{firm}'"
    for s in _query(url, db, f"SHOW MEASUREMENTS WHERE {where}"):
        for (measurement,) in s["values"]:
            keys = _query(url, db, f"SHOW FIELD KEYS FROM {_ident(measurement)}")
            for key, typ in keys[0]["values"]:
                q = f"SELECT {_ident(key)}::{typ} FROM {_ident(measurement)} WHERE {where}"
                q += " GROUP BY *"
                for series in _query(url, db, q):
                    tags = tuple(sorted((k, v) for k, v in series["tags"].items() if v))
                    for t, value in series["values"]:
                        if value is not None:
                            rep = repr(value) if isinstance(value, float) else value
                            out[measurement, tags, t, key, typ] = rep
    return out


def _tables(url: str) -> set[str]:
    """Tables of the registry at ``url`` (none if it was never created)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return set()
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def registry_rows(url: str, firm: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row (every column) of every table, or only the firm's rows, by primary key."""
    engine = make_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            for name, t in Base.metadata.tables.items():
                stmt = select(t).order_by(*t.primary_key.columns)
                if firm is not None:
                    spec = next((s for s in SPECS if s.name == name), None)
                    if spec is None:
                        continue
                    stmt = stmt.where(firm_filter(spec, firm))
                out[name] = [dict(r) for r in conn.execute(stmt).mappings()]
    finally:
        engine.dispose()
    return out


def archive_texts(path: Path) -> dict[str, bytes]:
    """Every member of an archive, decompressed."""
    out = {}
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            fh = tar.extractfile(info)
            assert fh is not None
            data = fh.read()
            out[info.name] = gzip.decompress(data) if info.name.endswith(".gz") else data
    return out


# --------------------------------------------------------------------------- fixtures


@dataclass
class Source:
    url: str
    influx: InfluxSettings
    keys: dict[str, str]


@pytest.fixture
def source(registry_db: Callable[[str], str], influxdb: InfluxDB, database: str) -> Source:
    url = registry_db("source")  # SQLite, then PostgreSQL (so is every target)
    keys = build_registry(url)
    settings = InfluxSettings(url=influxdb.url, database=database)
    build_timeseries(settings)
    return Source(url, settings, keys)


def _target(
    tmp_path: Path, influxdb: InfluxDB, name: str, registry_db: Callable[[str], str]
) -> tuple[str, InfluxSettings]:
    db = f"{name}_{tmp_path.name[-12:]}".replace("-", "_")
    return registry_db(name), InfluxSettings(url=influxdb.url, database=db)


def _seed_partners(url: str) -> None:
    """A target that already knows acme's partners (their firm rows only)."""
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        import_document(
            s,
            {
                "firms": [
                    {"id": "beta", "name": "Beta Molding", "region": "kansai"},
                    {"id": "gamma", "name": "Gamma Press GAMMA-SECRET", "region": "kanto"},
                ]
            },
        )
    engine.dispose()


# --------------------------------------------------------------------------- tests


class RecordingProgress:
    """A :class:`renkei.core.progress.Reporter` that keeps each task's total and count."""

    def __init__(self) -> None:
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = {}

    def task(self, key: str, description: str, total: int | None) -> None:
        self.totals[key] = total
        self.done[key] = 0

    def advance(self, key: str, n: int = 1) -> None:
        self.done[key] += n


def test_round_trip_loses_nothing_and_takes_nothing_of_other_firms(
    tmp_path: Path, source: Source, influxdb: InfluxDB, registry_db: Callable[[str], str]
) -> None:
    archive = tmp_path / "acme.tar"
    progress = RecordingProgress()
    report = export_firm(
        "acme",
        database_url=source.url,
        out=archive,
        influx=source.influx,
        chunk_points=500,
        slice_points=1000,
        progress=progress,
    )
    # Progress: every table and measurement counted against its total, every point.
    assert progress.totals == {"tables": len(SPECS), "measurements": 8, "points": None}
    assert progress.done == {
        "tables": len(SPECS),
        "measurements": 8,
        "points": sum(report.points.values()),
    }
    assert report.timeseries_included
    assert report.chunks >= 10 and report.slices >= 5  # streamed in many chunks and slices
    assert set(report.points) == {
        "anomaly",
        "custom",
        "event",
        "gateway_health",
        "gateway_state",
        "numeric",
        "shot",
        "telemetry",
    }
    assert report.points["telemetry"] == 3 * 5 * 100
    assert report.points["custom"] == 10
    expected_rows = {
        "firm": 1,
        "site": 2,
        "line": 2,
        "machine": 3,
        "mold": 2,
        "api_credential": 3,
        "partner_group": 1,
        "partner_group_member": 2,
        "sharing_grant": 3,
        "capacity_booking": 2,
        "disruption": 1,
        "takeover_request": 1,
        "takeover_job": 2,
        "takeover_assignment": 3,
        "gateway_status": 2,
        "site_bridge_status": 0,
        "gateway_enrolment": 1,
        "deployment": 1,
        "deployment_target": 1,
        "fleet_gateway": 1,
        "fleet_model": 1,
        "audit_event": 3,
        "notification_settings": 1,
        "notification_delivery": 1,
        "operator_count": 1,
    }
    assert report.rows == expected_rows

    # The archive: manifest first, every row acme's, every point tagged firm=acme.
    texts = archive_texts(archive)
    assert next(iter(texts)) == "manifest.json"
    manifest = json.loads(texts["manifest.json"])
    assert manifest["firm_id"] == "acme" and manifest["format_version"] == 1
    assert manifest["software_version"] and manifest["schema_revision"]
    for name, data in texts.items():
        for marker in SECRET_MARKERS:
            assert marker.encode() not in data, (marker, name)
        if name.startswith("timeseries/"):
            assert b"firm=beta" not in data
            records = data.decode().count(",firm=acme")
            member = next(m for m in manifest["members"] if m["name"] == name)
            assert records == member["points"]
    for spec in SPECS:
        rows = [json.loads(ln) for ln in texts[f"tables/{spec.name}.jsonl.gz"].splitlines()]
        assert len(rows) == expected_rows[spec.name]
        if spec.owner_column:
            assert {r[spec.owner_column] for r in rows} <= {"acme"}

    # Import into a fresh registry and a fresh InfluxDB database (partners known there).
    url, target_influx = _target(tmp_path, influxdb, "target", registry_db)
    _seed_partners(url)
    progress = RecordingProgress()
    imported = import_archive(
        archive, database_url=url, influx=target_influx, batch_points=700, progress=progress
    )
    total_points = sum(report.points.values())
    assert progress.totals == {"tables": len(SPECS), "points": total_points}
    assert progress.done == {"tables": len(SPECS), "points": total_points}
    assert imported.skipped == [] and imported.remapped == {}
    assert imported.verification_problems == []
    assert imported.rows == expected_rows
    assert imported.points == report.points

    # Every row of acme, every column, equal; nothing else in the target but the partners.
    assert registry_rows(url, "acme") == registry_rows(source.url, "acme")
    everything = registry_rows(url)
    assert sum(map(len, everything.values())) == sum(expected_rows.values()) + 2
    # Every point equal, with its type and nanosecond time; no other firm's point.
    want = points_of(influxdb.url, source.influx.database, "acme")
    got = points_of(influxdb.url, target_influx.database, "acme")
    assert len(want) > 4500  # field values
    assert got == want
    assert ("custom", (("firm", "acme"), ("kind", "a,b=c"), ("site", "s 1")), -10**9 + 123, "f",
            "float") in got  # fmt: skip
    for measurement in ("custom", "numeric"):
        floats = {v for k, v in got.items() if k[0] == measurement and k[3] == "f"}
        assert floats >= {"-0", "5e-324", "1.7976931348623157e+308", 10**20}  # JSON spellings
    assert (
        _query(influxdb.url, target_influx.database, "SHOW MEASUREMENTS WHERE firm = 'beta'") == []
    )
    series = _query(influxdb.url, target_influx.database, "SHOW SERIES")
    assert all(",firm=acme" in key for (key,) in series[0]["values"])

    # The firm's API keys keep working (only hashes travelled).
    engine = make_engine(url)
    with session_scope(engine) as s:
        principal = verify_key(s, source.keys["acme-operator"])
        assert principal is not None and principal.firm_id == "acme"
        assert verify_key(s, source.keys["beta-operator"]) is None
    engine.dispose()


def test_whole_platform_moves_firm_by_firm(
    tmp_path: Path, source: Source, influxdb: InfluxDB, registry_db: Callable[[str], str]
) -> None:
    """All three firms exported and imported: the target equals the source, every table."""
    archives = {}
    for firm in ("acme", "beta", "gamma"):
        archives[firm] = tmp_path / f"{firm}.tar"
        export_firm(firm, database_url=source.url, out=archives[firm], influx=source.influx)
    url, target_influx = _target(tmp_path, influxdb, "platform", registry_db)
    # beta first: its rows naming acme (a group member, a grant, an assignment) are skipped
    # and reported, because acme does not exist yet ...
    first = import_archive(archives["beta"], database_url=url, influx=target_influx)
    assert sorted((r.table, r.missing_firm) for r in first.skipped) == [
        ("partner_group_member", "acme"),
        ("sharing_grant", "acme"),
        ("takeover_assignment", "acme"),
    ]
    import_archive(archives["gamma"], database_url=url, influx=target_influx)
    third = import_archive(archives["acme"], database_url=url, influx=target_influx)
    assert third.skipped == []
    # ... and restored by importing beta again with replace once acme is there.
    again = import_archive(archives["beta"], database_url=url, influx=target_influx, replace=True)
    assert again.skipped == [] and again.remapped == {}
    assert registry_rows(url) | {"alembic": []} == registry_rows(source.url) | {"alembic": []}
    for firm in ("acme", "beta"):
        assert points_of(influxdb.url, target_influx.database, firm) == points_of(
            influxdb.url, source.influx.database, firm
        )


def test_tampered_member_is_refused_before_anything_is_written(
    tmp_path: Path, source: Source, influxdb: InfluxDB, registry_db: Callable[[str], str]
) -> None:
    archive = tmp_path / "acme.tar"
    export_firm("acme", database_url=source.url, out=archive, influx=source.influx)
    for victim in ("tables/machine.jsonl.gz", "timeseries/"):
        tampered = tmp_path / "tampered.tar"
        data = bytearray(archive.read_bytes())
        with tarfile.open(archive) as tar:
            info = next(i for i in tar.getmembers() if i.name.startswith(victim))
        data[info.offset_data + info.size // 2] ^= 0x01
        tampered.write_bytes(bytes(data))
        url, target_influx = _target(tmp_path, influxdb, "tampered", registry_db)
        with pytest.raises(ArchiveError, match="SHA-256 mismatch") as err:
            import_archive(tampered, database_url=url, influx=target_influx)
        assert err.value.member == info.name and info.name in str(err.value)
        assert _tables(url) == set()
        dbs = _query(influxdb.url, "", "SHOW DATABASES")[0]["values"]
        assert [target_influx.database] not in dbs


def test_import_twice_conflicts_and_replace_restores(
    tmp_path: Path, source: Source, influxdb: InfluxDB, registry_db: Callable[[str], str]
) -> None:
    archive = tmp_path / "acme.tar"
    export_firm("acme", database_url=source.url, out=archive, influx=source.influx)
    url, target_influx = _target(tmp_path, influxdb, "twice", registry_db)
    _seed_partners(url)
    import_archive(archive, database_url=url, influx=target_influx)

    with pytest.raises(ImportConflict, match="firm acme already exists") as err:
        import_archive(archive, database_url=url, influx=target_influx)
    assert err.value.replaceable
    assert err.value.conflicts["site"] == ["acme-s1", "acme-s2"]
    assert err.value.conflicts["firm"] == ["acme"]
    assert "telemetry" in err.value.conflicts["InfluxDB measurements"]
    assert "acme-s1" in str(err.value) and "--replace" in str(err.value)

    # Drift in the target: a renamed machine, an extra site, extra points, and another
    # firm's rows that refer to acme (they must survive the replace).
    engine = make_engine(url)
    with session_scope(engine) as s:
        import_document(
            s,
            {
                "sites": [
                    {
                        "id": "acme-s9",
                        "firm_id": "acme",
                        "name": "extra",
                        "latitude_deg": 1.0,
                        "longitude_deg": 2.0,
                        "region": "x",
                    }
                ]
            },
        )
        s.add(PartnerGroup(id="beta-circle", owner_firm_id="beta", name="beta friends"))
        s.flush()
        s.add(PartnerGroupMember(group_id="beta-circle", firm_id="acme"))
    engine.dispose()
    store = InfluxStore(settings=target_influx)
    store.write_lines(b"telemetry,firm=acme,site=zz oil_temp_C=99.0 1\n", precision="ns")
    store.close()

    replaced = import_archive(archive, database_url=url, influx=target_influx, replace=True)
    assert replaced.verification_problems == []
    assert registry_rows(url, "acme") == registry_rows(source.url, "acme")
    assert points_of(influxdb.url, target_influx.database, "acme") == points_of(
        influxdb.url, source.influx.database, "acme"
    )
    engine = make_engine(url)
    with session_scope(engine) as s:
        assert s.get(PartnerGroupMember, ("beta-circle", "acme")) is not None
    engine.dispose()


def test_missing_partners_are_skipped_and_reported_or_refused_with_strict(
    tmp_path: Path, source: Source, registry_db: Callable[[str], str]
) -> None:
    engine = make_engine(source.url)
    with session_scope(engine) as s:
        admin_key = issue_key(s, firm_id="acme", role=Role.ADMIN)
    engine.dispose()
    archive = tmp_path / "acme.tar"
    export_firm("acme", database_url=source.url, out=archive)  # registry only
    strict_url = registry_db("strict")
    with pytest.raises(MissingPartners) as err:
        import_archive(archive, database_url=strict_url, strict=True)
    assert sorted(err.value.missing) == ["beta", "gamma"]
    assert "takeover_assignment[" in str(err.value)
    assert registry_rows(strict_url)["firm"] == []  # nothing written

    url = registry_db("lenient")
    report = import_archive(archive, database_url=url)
    admin = [r for r in report.skipped if r.missing_firm is None]
    reason = "admin credential: a platform role, not portable"
    assert [(r.table, r.row, r.reason) for r in admin] == [
        ("api_credential", admin_key[3:].split("_")[0], reason)
    ]
    engine = make_engine(url)
    with session_scope(engine) as s:
        assert verify_key(s, admin_key) is None  # nobody becomes administrator by import
    engine.dispose()
    assert sorted((r.table, r.missing_firm) for r in report.skipped if r not in admin) == [
        ("partner_group_member", "beta"),
        ("partner_group_member", "gamma"),
        ("sharing_grant", "beta"),
        ("takeover_assignment", "beta"),
        ("takeover_assignment", "beta"),
        ("takeover_assignment", "gamma"),
    ]
    rows = registry_rows(url, "acme")
    assert len(rows["sharing_grant"]) == 2  # the group and supporters grants stay
    assert len(rows["audit_event"]) == 3  # audit history is kept (reader ids are not FKs)
    assert rows["takeover_job"] == registry_rows(source.url, "acme")["takeover_job"]


def test_ids_of_other_firms_in_the_target(
    tmp_path: Path, source: Source, registry_db: Callable[[str], str]
) -> None:
    archive = tmp_path / "acme.tar"
    export_firm("acme", database_url=source.url, out=archive)
    url = registry_db("shared")
    _seed_partners(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        # gamma already uses the integer ids acme's grants, disruption and deployment have.
        import_document(
            s,
            {
                "sites": [
                    {
                        "id": "gamma-s1",
                        "firm_id": "gamma",
                        "name": "Gamma plant",
                        "latitude_deg": 35.6,
                        "longitude_deg": 139.7,
                        "region": "kanto",
                    }
                ]
            },
        )
        for _ in range(3):
            s.add(
                SharingGrant(
                    owner_firm_id="gamma", grantee_kind=GranteeKind.FIRM, grantee_id="beta"
                )
            )
        s.add(
            Disruption(
                firm_id="gamma",
                site_id="gamma-s1",
                status=DisruptionStatus.ENDED,
                source=DisruptionSource.DECLARED,
                start=datetime(2025, 1, 1, tzinfo=UTC),
            )
        )
        s.add(
            Deployment(
                firm_id="gamma",
                model_name="m",
                version="1",
                kind=DeploymentKind.DEPLOY,
                target="all",
            )
        )
    engine.dispose()
    report = import_archive(archive, database_url=url)
    assert report.remapped == {
        "sharing_grant": {1: 4, 2: 5, 3: 6},
        "disruption": {1: 2},
        "deployment": {1: 2},
    }
    src = registry_rows(source.url, "acme")
    dst = registry_rows(url, "acme")
    renumbered = {"sharing_grant": "id", "disruption": "id", "deployment": "id"}
    for table, column in renumbered.items():
        assert [{**r, column: 0} for r in dst[table]] == [{**r, column: 0} for r in src[table]]
    # References follow the new ids: a foreign key and a plain integer column.
    assert dst["takeover_request"][0]["disruption_id"] == 2
    assert dst["deployment_target"][0]["deployment_id"] == 2
    assert dst["fleet_model"][0]["desired_deployment_id"] == 2
    for table in (
        set(src) - set(renumbered) - {"takeover_request", "deployment_target", "fleet_model"}
    ):
        assert dst[table] == src[table], table

    # A string id held by another firm is a conflict --replace cannot resolve.
    other = registry_db("other")
    _seed_partners(other)
    engine = make_engine(other)
    with session_scope(engine) as s:
        import_document(
            s,
            {
                "sites": [
                    {
                        "id": "acme-s2",
                        "firm_id": "gamma",
                        "name": "gamma's",
                        "latitude_deg": 1.0,
                        "longitude_deg": 2.0,
                        "region": "x",
                    }
                ]
            },
        )
    engine.dispose()
    with pytest.raises(ImportConflict, match="belong to other firms") as err:
        import_archive(archive, database_url=other, replace=True)
    assert err.value.conflicts == {"site": ["acme-s2"]} and not err.value.replaceable


def test_cli_export_and_import(
    tmp_path: Path, source: Source, influxdb: InfluxDB, registry_db: Callable[[str], str]
) -> None:
    renkei = str(REPO / ".venv" / "bin" / "renkei")
    archive = tmp_path / "cli.tar"
    url, target_influx = _target(tmp_path, influxdb, "cli", registry_db)
    env = {"PATH": "/usr/bin:/bin", "RENKEI_API_DATABASE_URL": source.url}
    run = subprocess.run(
        [renkei, "cloud", "export", "--firm", "acme", "--out", str(archive)]
        + ["--influx", influxdb.url, "--influx-database", source.influx.database],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "exported firm acme" in run.stdout and "points/s" in run.stdout
    # Not on a terminal: no progress bars, only the report.
    assert "registry tables" not in run.stdout + run.stderr
    assert "time-series points" not in run.stdout + run.stderr
    # Forced on (RENKEI_PROGRESS=1): bars on stderr; the report on stdout is the same.
    forced = subprocess.run(
        [renkei, "cloud", "export", "--firm", "acme", "--out", str(archive), "--force"]
        + ["--influx", influxdb.url, "--influx-database", source.influx.database],
        capture_output=True,
        text=True,
        env={**env, "RENKEI_PROGRESS": "1"},
        timeout=120,
    )
    assert forced.returncode == 0, forced.stderr
    assert "registry tables" in forced.stderr and "time-series points" in forced.stderr
    assert "registry tables" not in forced.stdout
    timing = re.compile(r", [0-9.]+ s \([0-9,]+ points/s\)")
    assert timing.sub("", forced.stdout) == timing.sub("", run.stdout)

    env = {"PATH": "/usr/bin:/bin", "RENKEI_INFLUX_URL": influxdb.url}
    cmd = [renkei, "cloud", "import", str(archive), "--database-url", url]
    cmd += ["--influx-database", target_influx.database]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "imported firm acme" in run.stdout and "skipped 6 rows" in run.stdout
    assert "time-series points" not in run.stdout + run.stderr
    needle = "takeover_assignment[id=1 request_id=acme-req-1 job_id=J1]: firm beta does not"
    assert needle in run.stdout
    assert points_of(influxdb.url, target_influx.database, "acme") == points_of(
        influxdb.url, source.influx.database, "acme"
    )
    # Importing twice: exit 1, the conflict named.
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1 and "already exists" in run.stderr and "acme-s1" in run.stderr
    # Bad options: exit 2 with a message (in-process: the same typer app, faster).
    unset: dict[str, str | None] = {
        f"RENKEI_INFLUX_{v}": None for v in ("URL", "DATABASE", "TOKEN", "USERNAME", "PASSWORD")
    }
    runner = CliRunner(env={**unset, "RENKEI_API_DATABASE_URL": source.url})
    out = str(tmp_path / "x.tar")
    bad = [
        (["export", "--out", out], "--firm"),
        (["export", "--firm", "acme", "--out", str(archive)], "exists"),
        (["export", "--firm", "acme", "--out", str(tmp_path / "no" / "x.tar")], "directory"),
        (["export", "--firm", "acme", "--out", out, "--influx", "ftp://nowhere"], "InfluxDB"),
        (
            ["export", "--firm", "acme", "--out", out, "--influx", influxdb.url]
            + ["--influx-token", "t", "--influx-username", "u"],
            "token",
        ),
        (["export", "--firm", "acme", "--out", out, "--influx-token", "t"], "need --influx"),
        (["export", "--firm", "acme", "--out", out, "--chunk-points", "0"], "chunk-points"),
        (
            ["export", "--firm", "acme", "--out", out, "--database-url", "sqlite:////nope/r.db"],
            "does not exist",
        ),
        (["import", str(tmp_path / "missing.tar"), "--database-url", url], "missing.tar"),
        (["import", str(archive), "--database-url", "nonsense://"], "database-url"),
        (["import", str(archive), "--database-url", url], "--influx"),
    ]
    for argv, needle in bad:
        result = runner.invoke(cloud_app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert needle in result.output, (argv, result.output)
    assert not Path(out).exists()
    # An unknown firm or a corrupt archive: exit 1, nothing written.
    result = runner.invoke(cloud_app, ["export", "--firm", "nobody", "--out", out])
    assert result.exit_code == 1 and "'nobody' not found" in result.output
    assert not Path(out).exists() and list(tmp_path.glob(".x.tar*")) == []
    Path(out).write_bytes(b"not a tar")
    result = runner.invoke(cloud_app, ["import", out, "--database-url", url])
    assert result.exit_code == 1 and "not a readable archive" in result.output
