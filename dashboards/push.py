"""Provision a running Grafana over its HTTP API with grafana-client (idempotent).

Order and endpoints (Grafana 9.1+ HTTP API):

1. Folder ``Renkei`` (uid ``renkei``): ``GET /api/folders/renkei``; on 404
   ``POST /api/folders``; a different title is corrected with ``PUT /api/folders/renkei``.
2. Datasource (uid ``renkei-influxdb``): ``GET /api/datasources/uid/...``; on 404
   ``POST /api/datasources``, otherwise ``PUT /api/datasources/uid/...`` when it differs.
3. Dashboards: ``GET /api/dashboards/uid/<uid>``; when missing or different,
   ``POST /api/dashboards/db`` with ``folderUid`` and ``overwrite: true``.
4. Alert rules: ``GET /api/v1/provisioning/alert-rules/<uid>``; on 404 ``POST``, when
   different ``PUT``; then each rule group's interval via
   ``GET``/``PUT /api/v1/provisioning/folder/renkei/rule-groups/<group>``.

Running it twice changes nothing the second time (every step compares first). It was
tested against a local HTTP stub of these endpoints only, not against a real Grafana.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import grafana_client  # type: ignore[import-untyped]
import requests
from grafana_client.client import (  # type: ignore[import-untyped]
    GrafanaClientError,
    GrafanaException,
)

from renkei.core.errors import TransportError
from renkei.dashboards.alerts import FOLDER_TITLE, FOLDER_UID, GROUP_INTERVAL_S, RULES
from renkei.dashboards.boards import build_boards
from renkei.dashboards.build import datasource_model
from renkei.dashboards.queries import DATASOURCE_UID

__all__ = ["Action", "PushError", "PushReport", "push"]

Action = Literal["created", "updated", "unchanged"]


class PushError(TransportError):
    """Grafana could not be reached or refused a request while provisioning; the
    grafana-client or requests error is chained as ``__cause__``."""


@dataclass
class PushReport:
    """What :func:`push` did: ``(kind, uid) -> action``."""

    actions: dict[tuple[str, str], Action] = field(default_factory=dict)

    def record(self, kind: str, uid: str, action: Action) -> None:
        """Remember the action taken on one object."""
        self.actions[(kind, uid)] = action

    def changed(self) -> list[tuple[str, str]]:
        """Objects created or updated."""
        return [key for key, action in self.actions.items() if action != "unchanged"]


def _missing(exc: Exception) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def _subset_equal(wanted: Any, actual: Any) -> bool:
    """Whether every key of ``wanted`` has the same value in ``actual`` (recursively).

    Grafana adds fields (ids, versions, defaults) to what it returns, so only the keys we
    send are compared.
    """
    if isinstance(wanted, Mapping):
        if not isinstance(actual, Mapping):
            return False
        return all(k in actual and _subset_equal(v, actual[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(wanted) != len(actual):
            return False
        return all(_subset_equal(w, a) for w, a in zip(wanted, actual))
    return bool(wanted == actual)


def _client(
    url: str, *, token: str | None, user: str | None, password: str | None, timeout_s: float
) -> Any:
    credential: Any = token if token else ((user, password or "") if user else None)
    return grafana_client.GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)


def push(
    url: str,
    *,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    influx_url: str,
    influx_database: str = "renkei",
    influx_user: str | None = None,
    influx_password: str | None = None,
    influx_token: str | None = None,
    editable_rules: bool = False,
    timeout_s: float = 10.0,
    api: Any = None,
) -> PushReport:
    """Create or update the Renkei folder, datasource, dashboards and alert rules.

    Args:
        url: Grafana base URL (``http://grafana:3000``; credentials may be in the URL).
        token: service-account token (``Authorization: Bearer``); or ``user``/``password``.
        influx_url, influx_database: what the datasource points at.
        influx_user, influx_password: InfluxDB 1.x credentials, or ``influx_token`` for
            2.x/3.x (sent as ``Authorization: Token ...``).
        editable_rules: send ``X-Disable-Provenance`` so the rules stay editable in the UI.
        timeout_s: per-request timeout.
        api: a ready ``grafana_client.GrafanaApi`` (tests); ``url`` etc. are then ignored.

    Raises:
        PushError: Grafana could not be reached or refused a request (what was done
            before stays done; the push is idempotent, so run it again).
    """
    try:
        return _push(
            api or _client(url, token=token, user=user, password=password, timeout_s=timeout_s),
            influx_url=influx_url,
            influx_database=influx_database,
            influx_user=influx_user,
            influx_password=influx_password,
            influx_token=influx_token,
            editable_rules=editable_rules,
        )
    except (GrafanaException, requests.RequestException) as exc:
        raise PushError(f"Grafana push failed: {exc}") from exc


def _push(
    grafana: Any,
    *,
    influx_url: str,
    influx_database: str,
    influx_user: str | None,
    influx_password: str | None,
    influx_token: str | None,
    editable_rules: bool,
) -> PushReport:
    report = PushReport()
    _folder(grafana, report)
    _datasource(
        grafana,
        report,
        datasource_model(
            url=influx_url,
            database=influx_database,
            user=influx_user or "",
            password=influx_password or "",
            token=influx_token,
        ),
    )
    for board in build_boards():
        _dashboard(grafana, report, board.to_json())
    _rules(grafana, report, disable_provenance=editable_rules)
    return report


def _folder(grafana: Any, report: PushReport) -> None:
    try:
        folder = grafana.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.record("folder", FOLDER_UID, "created")
        return
    if folder.get("title") != FOLDER_TITLE:
        grafana.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        report.record("folder", FOLDER_UID, "updated")
    else:
        report.record("folder", FOLDER_UID, "unchanged")


def _datasource(grafana: Any, report: PushReport, model: dict[str, Any]) -> None:
    try:
        current = grafana.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        grafana.datasource.create_datasource(model)
        report.record("datasource", DATASOURCE_UID, "created")
        return
    # Secrets are write-only in Grafana: compare everything else, always resend secrets
    # when something else changed.
    visible = {k: v for k, v in model.items() if k != "secureJsonData"}
    if _subset_equal(visible, current):
        report.record("datasource", DATASOURCE_UID, "unchanged")
        return
    grafana.datasource.update_datasource_by_uid(DATASOURCE_UID, model)
    report.record("datasource", DATASOURCE_UID, "updated")


def _dashboard(grafana: Any, report: PushReport, model: dict[str, Any]) -> None:
    uid = str(model["uid"])
    action: Action = "created"
    try:
        current = grafana.dashboard.get_dashboard(uid)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
    else:
        same_folder = current.get("meta", {}).get("folderUid") == FOLDER_UID
        if same_folder and _subset_equal(model, current.get("dashboard", {})):
            report.record("dashboard", uid, "unchanged")
            return
        action = "updated"
    grafana.dashboard.update_dashboard(
        {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "renkei dashboards push",
        }
    )
    report.record("dashboard", uid, action)


def _rules(grafana: Any, report: PushReport, *, disable_provenance: bool) -> None:
    prov = grafana.alertingprovisioning
    for rule in RULES:
        body = rule.to_api(folder_uid=FOLDER_UID)
        try:
            current = prov.get_alertrule(rule.uid)
        except GrafanaClientError as exc:
            if not _missing(exc):
                raise
            prov.create_alertrule(body, disable_provenance=disable_provenance)
            report.record("alert-rule", rule.uid, "created")
            continue
        if _subset_equal(body, current):
            report.record("alert-rule", rule.uid, "unchanged")
        else:
            prov.update_alertrule(rule.uid, body, disable_provenance=disable_provenance)
            report.record("alert-rule", rule.uid, "updated")
    for group, interval in GROUP_INTERVAL_S.items():
        current = prov.get_rule_group(FOLDER_UID, group)
        if current.get("interval") == interval:
            report.record("rule-group", group, "unchanged")
            continue
        prov.update_rule_group(
            FOLDER_UID,
            group,
            {**current, "title": group, "folderUid": FOLDER_UID, "interval": interval},
            disable_provenance=disable_provenance,
        )
        report.record("rule-group", group, "updated")
