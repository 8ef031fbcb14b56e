"""The access matrix: every route × role × own/other firm is allowed or denied as
:data:`renkei.cloud.api.access.RULES` specifies, and every route has exactly one rule.

"Allowed" means the request passes authentication and authorization (any status other than
401/403; a missing object or an empty body then gives 404/422). "Denied" means 403. No
combination may produce a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from renkei.cloud.api import api_routes
from renkei.cloud.api.access import PUBLIC, RULES
from renkei.cloud.registry import Role
from tests.api.rig import ApiRig, imm, mold

ROUTES = api_routes()
OWN, OTHER = "own-firm", "other-firm"


def _path(template: str, firm: str) -> str:
    """Fill a route template; ``{firm_id}`` gets ``firm``, ids get plausible values."""
    values = {
        "firm_id": firm,
        "site_id": f"{firm}-s1",
        "line_id": f"{firm}-l1",
        "machine_id": f"{firm}-m1",
        "mold_id": f"{firm}-p1",
        "region": "kansai",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)


@pytest.fixture(scope="module")
def matrix_rig(
    tmp_path_factory: pytest.TempPathFactory, module_registry_url: str
) -> Iterator[ApiRig]:
    rig = ApiRig(tmp_path_factory.mktemp("matrix"), database_url=module_registry_url)
    for firm in (OWN, OTHER):
        rig.seed_firm(firm, machines=[imm(f"{firm}-m1")], molds=[mold(f"{firm}-p1")])
    try:
        yield rig
    finally:
        rig.close()


def test_every_route_has_a_rule_and_every_rule_a_route() -> None:
    names = [name for name, _, _ in ROUTES]
    assert len(names) == len(set(names)), "route names must be unique"
    assert not set(RULES) & set(PUBLIC), "a route is either keyed or public"
    assert set(names) == set(RULES) | set(PUBLIC), {
        "routes without rule": sorted(set(names) - set(RULES) - set(PUBLIC)),
        "rules without route": sorted((set(RULES) | set(PUBLIC)) - set(names)),
    }


def _cases() -> Iterator[tuple[str, str, str, Role, str]]:
    for name, path, methods in ROUTES:
        if name in PUBLIC:
            continue  # no key: tested in tests/integration/test_gateway_enrol_api.py
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            for role in Role:
                targets = (OWN, OTHER) if "{firm_id}" in path else (OWN,)
                for target in targets:
                    yield name, method, path, role, target


@pytest.mark.parametrize(
    ("name", "method", "path", "role", "target"),
    list(_cases()),
    ids=lambda v: v.value if isinstance(v, Role) else str(v),
)
def test_access(
    matrix_rig: ApiRig, name: str, method: str, path: str, role: Role, target: str
) -> None:
    rule = RULES[name]
    expected = role in rule.roles and (rule.scope != "own" or target == OWN or role is Role.ADMIN)
    client = matrix_rig.client(OWN, role)
    url = _path(path, target)
    # Write requests get an empty JSON object: authorization is decided before the body
    # is validated, so an allowed call answers 4xx for the body, never 401/403.
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    # Destructive calls on objects that exist would change the shared fixture; they run
    # against ids that do not exist ("1"), except the firm itself.
    if method == "DELETE":
        url = re.sub(r"/(own-firm|other-firm)-(s1|l1|m1|p1)$", "/does-not-exist", url)
    response = client.request(method, url, **kwargs)
    assert response.status_code < 500, (name, role, target, response.text)
    if expected:
        assert response.status_code not in (401, 403), (name, role, target, response.text)
    else:
        assert response.status_code == 403, (name, role, target, response.text)


def test_every_route_requires_a_key(matrix_rig: ApiRig) -> None:
    anonymous = matrix_rig.client()
    for name, path, methods in ROUTES:
        for method in methods - {"HEAD", "OPTIONS"}:
            r = anonymous.request(method, _path(path, OWN))
            if name in PUBLIC:
                # No key needed; without a token the body is invalid (never a 2xx).
                assert r.status_code == 422, (method, path, r.text)
            else:
                assert r.status_code == 401, (method, path, r.text)
