"""Property-based API fuzzing with schemathesis: no request derived from the OpenAPI
schema makes the API answer 5xx.

Requests are sent as an operator and as an admin of a seeded firm; ``{firm_id}`` in paths
is pinned to that firm so the fuzzing reaches the endpoints' logic instead of stopping at
the access check. Bounded: a fixed number of examples per operation, no deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from renkei.cloud.registry import Role
from tests.api.rig import ApiRig, imm, mold

FIRM = "acme"


@pytest.fixture(scope="module")
def fuzz_rig(
    tmp_path_factory: pytest.TempPathFactory, module_registry_url: str
) -> Iterator[ApiRig]:
    rig = ApiRig(Path(tmp_path_factory.mktemp("fuzz")), database_url=module_registry_url)
    rig.seed_firm(FIRM, machines=[imm("acme-m1"), imm("acme-m2", 3000)], molds=[mold("acme-p1")])
    rig.seed_firm("beta", lat=35.68, lon=139.7, region="kanto", machines=[imm("beta-m1")])
    try:
        yield rig
    finally:
        rig.close()


def test_no_server_errors(fuzz_rig: ApiRig) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_rig.app)
    headers = {
        role: {"Authorization": f"Bearer {fuzz_rig.key(FIRM, role)}"}
        for role in (Role.OPERATOR, Role.ADMIN)
    }
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"invalid OpenAPI operation: {result}"
        operations.append(result.ok())
    assert len(operations) > 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            if case.path_parameters and "firm_id" in case.path_parameters:
                case.path_parameters["firm_id"] = FIRM
            for role, h in headers.items():
                response = case.call(headers=h)
                assert response.status_code < 500, (
                    role.value,
                    case.method,
                    case.formatted_path,
                    response.text,
                )

        fuzz()
