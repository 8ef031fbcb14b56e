"""The published OpenAPI document describes every schema, property and parameter.

Walks ``components.schemas`` (each schema, each property at any depth, through ``allOf``,
``anyOf``, ``oneOf``, ``items`` and ``additionalProperties``), the inline request and
response schemas of every operation, and every operation parameter; the failure message
names everything that lacks a non-empty ``description``. Also checks that the error body
the document declares for 4xx is what the API sends.
"""

from __future__ import annotations

from typing import Any

from renkei.cloud.api.schemas.errors import ErrorResponse
from renkei.cloud.registry import Role
from tests.api.rig import ApiRig

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _described(node: dict[str, Any]) -> bool:
    return bool(str(node.get("description") or "").strip())


def _walk(schema: Any, where: str, missing: list[str]) -> None:
    """Append ``where.prop`` for every property below ``schema`` without a description."""
    if not isinstance(schema, dict):
        return
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, [])):
            _walk(sub, f"{where}<{key}[{i}]>", missing)
    if isinstance(schema.get("items"), dict):
        _walk(schema["items"], f"{where}[]", missing)
    if isinstance(schema.get("additionalProperties"), dict):
        _walk(schema["additionalProperties"], f"{where}{{}}", missing)
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if not _described(prop):
            missing.append(f"{where}.{name}")
        _walk(prop, f"{where}.{name}", missing)


def _undocumented(doc: dict[str, Any]) -> list[str]:
    missing: list[str] = []
    for name, schema in doc["components"]["schemas"].items():
        if not _described(schema):
            missing.append(f"components.schemas.{name} (the schema itself)")
        _walk(schema, f"components.schemas.{name}", missing)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            where = f"{method.upper()} {path}"
            for p in op.get("parameters", []):
                if not _described(p):
                    missing.append(f"{where} parameter {p.get('in')}:{p.get('name')}")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                _walk(content.get("schema"), f"{where} requestBody[{media}]", missing)
            for status, response in op.get("responses", {}).items():
                for media, content in response.get("content", {}).items():
                    _walk(content.get("schema"), f"{where} {status}[{media}]", missing)
    return missing


def test_every_schema_property_and_parameter_is_described(rig: ApiRig) -> None:
    doc = rig.client().get("/openapi.json").json()
    assert len(doc["components"]["schemas"]) > 50
    assert (
        sum(
            len(op.get("parameters", []))
            for item in doc["paths"].values()
            for op in item.values()
            if isinstance(op, dict)
        )
        > 100
    )
    missing = _undocumented(doc)
    assert not missing, f"{len(missing)} without a description:\n" + "\n".join(missing)


def test_the_walk_finds_undescribed_properties() -> None:
    doc = {
        "components": {
            "schemas": {
                "A": {
                    "description": "a",
                    "properties": {
                        "ok": {"type": "string", "description": "fine"},
                        "bare": {"type": "string"},
                        "nested": {
                            "description": "n",
                            "anyOf": [{"properties": {"deep": {"type": "integer"}}}],
                        },
                        "rows": {"description": "r", "items": {"properties": {"x": {}}}},
                    },
                },
                "B": {"enum": ["x"]},
            }
        },
        "paths": {"/p": {"get": {"parameters": [{"in": "query", "name": "q"}]}}},
    }
    assert _undocumented(doc) == [
        "components.schemas.A.bare",
        "components.schemas.A.nested<anyOf[0]>.deep",
        "components.schemas.A.rows[].x",
        "components.schemas.B (the schema itself)",
        "GET /p parameter query:q",
    ]


def test_documented_error_body_is_what_the_api_sends(rig: ApiRig) -> None:
    rig.seed_firm("acme")
    doc = rig.client().get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    op = doc["paths"]["/api/v1/firms/{firm_id}/takeovers"]["post"]
    schema = op["responses"]["4XX"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}

    anonymous = rig.client().get("/api/v1/me")
    operator = rig.client("acme", Role.OPERATOR)
    invalid = operator.post("/api/v1/firms/acme/takeovers", json={"jobs": []})
    missing = operator.get("/api/v1/firms/acme/machines/nope")
    for response, status, code in (
        (anonymous, 401, "unauthenticated"),
        (invalid, 422, "invalid"),
        (missing, 404, "not_found"),
    ):
        assert response.status_code == status, response.text
        assert ErrorResponse.model_validate(response.json()).error.code == code
