"""Model registry and rollout: signed model releases, signing keys, deployments, fleet view.

Registry (platform-wide, not per firm):

- ``POST /models`` (engineer, admin): publish a release. Body: the exact ``manifest.json``
  and ONNX bytes (base64) and the Ed25519 signature (:mod:`renkei.core.signing`). Refused
  with 422 unless the manifest is valid, the ONNX bytes hash to the manifest's ``sha256``
  and load as a model, and the signature is by a registered, unrevoked key over
  ``(name, version, sha256, manifest_sha256)``; ``detail.reason`` then says
  ``unsigned``, ``untrusted_key``, ``bad_signature``, ``malformed``, ``sha256_mismatch``,
  ``invalid_manifest`` or ``invalid_model``. Releases are immutable: publishing the same
  bytes again answers 200 with the stored release, different bytes 409.
- ``GET /models``, ``GET /models/{name}/{version}`` (manifest bytes in base64 and the
  signature), ``GET /models/{name}/{version}/artifact`` (the ONNX bytes; SHA-256 in the
  ``X-Renkei-Sha256`` header). Gateways download with an operator or engineer key of
  their firm and verify everything themselves.
- ``GET/POST /model-keys``, ``DELETE /model-keys/{key_id}``: public keys whose signatures
  the registry accepts (admins register and revoke them; engineers may list them).

Rollout (per firm):

- ``POST /firms/{firm_id}/deployments`` (engineer, admin): deploy ``model@version`` (or
  roll back) to ``gateway:ID|site:ID|group:NAME|all`` with an optional canary wave; the
  deployment is stored ``pending`` and driven by the rollout controller
  (:mod:`renkei.cloud.rollout`). ``GET .../deployments[/{id}]``: status and every gateway's
  outcome.
- ``GET /firms/{firm_id}/fleet``: every rollout-enabled gateway with the versions it runs,
  previous and desired versions, pins and its last deployment result.
- ``PUT/DELETE /firms/{firm_id}/fleet/{gateway_id}/pins/{model_name}``: pin a gateway to a
  version: deployments aimed at a site, group or ``all`` skip it; only a deployment naming
  it (``gateway:ID``) reaches it.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as FastPath
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import ClockDep, PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath, GatewayIdPath, ModelNamePath, ModelVersionPath
from renkei.cloud.api.schemas.models import (
    MAX_MODEL_BYTES,
    DeploymentCreate,
    DeploymentPublic,
    FleetGatewayPublic,
    FleetModelPublic,
    FleetView,
    LastResult,
    ModelPublish,
    ModelReleaseDetail,
    ModelReleasePublic,
    PinBody,
    SigningKeyCreate,
    SigningKeyPublic,
)
from renkei.cloud.registry import (
    Deployment,
    FleetGateway,
    FleetModel,
    GatewayStatus,
    ModelRelease,
    ModelSigningKey,
)
from renkei.cloud.rollout.service import RolloutError, create_deployment
from renkei.core.manifest import ModelManifest
from renkei.core.signing import (
    SignatureError,
    SigningKeyError,
    TrustedKeys,
    key_id,
    parse_public_key,
    public_key_text,
    sha256_hex,
    verify_model,
)

router = APIRouter(tags=["models"])

SHA_HEADER = "X-Renkei-Sha256"


# --------------------------------------------------------------------------- registry


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(
            f"{what} is not valid base64", detail={"reason": "malformed", "loc": what}
        ) from None


def _trusted(session: Session) -> TrustedKeys:
    rows = session.scalars(select(ModelSigningKey).where(ModelSigningKey.revoked.is_(False)))
    return TrustedKeys(r.public_key for r in rows)


def _check_loads(manifest: bytes, onnx: bytes, sha256: str) -> None:
    """Load the release exactly as a gateway would (graph vs manifest checks)."""
    from renkei.core.manifest import MANIFEST_FILE
    from renkei.edge.model.inference import AnomalyModel, ModelError

    with tempfile.TemporaryDirectory(prefix="renkei-model-") as tmp:
        parsed = ModelManifest.model_validate_json(manifest)
        (Path(tmp) / MANIFEST_FILE).write_bytes(manifest)
        (Path(tmp) / parsed.onnx_file).write_bytes(onnx)
        try:
            AnomalyModel.load(model_dir=Path(tmp), expected_sha256=sha256)
        except ModelError as exc:
            raise Invalid(
                f"the model does not load: {exc}", detail={"reason": "invalid_model"}
            ) from None


@router.get("/models", name="models.list", dependencies=[authorize("models.list")])
def list_models(
    session: SessionDep,
    name: Annotated[str | None, Query(description="Only releases of this model name.")] = None,
) -> list[ModelReleasePublic]:
    """Published releases (newest first), optionally of one model name."""
    query = select(ModelRelease).order_by(ModelRelease.published_at.desc())
    if name is not None:
        query = query.where(ModelRelease.name == name)
    return [ModelReleasePublic.model_validate(r) for r in session.scalars(query)]


@router.post(
    "/models",
    name="models.publish",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("models.publish")],
)
def publish_model(
    body: ModelPublish,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    response: Response,
) -> ModelReleasePublic:
    """Publish a signed release (see the module docstring for what is checked)."""
    manifest_bytes = _b64(body.manifest_b64, "manifest_b64")
    onnx = _b64(body.onnx_b64, "onnx_b64")
    if len(onnx) > MAX_MODEL_BYTES:
        raise Invalid(f"the ONNX file exceeds {MAX_MODEL_BYTES} bytes")
    try:
        manifest = ModelManifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        raise Invalid(
            f"invalid manifest.json: {exc.error_count()} problem(s)",
            detail={"reason": "invalid_manifest", "errors": exc.errors(include_url=False)},
        ) from None
    sha, manifest_sha = sha256_hex(onnx), sha256_hex(manifest_bytes)
    if sha != manifest.sha256:
        raise Invalid(
            f"the ONNX bytes hash to {sha}, the manifest says {manifest.sha256}",
            detail={"reason": "sha256_mismatch"},
        )
    try:
        verify_model(
            body.signature,
            _trusted(session),
            name=manifest.name,
            version=manifest.version,
            sha256=sha,
            manifest_sha256=manifest_sha,
        )
    except SignatureError as exc:
        raise Invalid(f"signature refused: {exc}", detail={"reason": exc.reason}) from None
    assert body.signature is not None
    existing = session.get(ModelRelease, (manifest.name, manifest.version))
    if existing is not None:
        if existing.sha256 == sha and existing.manifest_sha256 == manifest_sha:
            response.status_code = status.HTTP_200_OK
            return ModelReleasePublic.model_validate(existing)
        raise Conflict(
            f"{manifest.name}@{manifest.version} is already published with other bytes; "
            "releases are immutable, publish a new version"
        )
    _check_loads(manifest_bytes, onnx, sha)
    release = ModelRelease(
        name=manifest.name,
        version=manifest.version,
        sha256=sha,
        manifest_sha256=manifest_sha,
        key_id=body.signature.key_id,
        signature=body.signature.signature,
        manifest=manifest_bytes,
        onnx=onnx,
        size_bytes=len(onnx),
        algorithm=manifest.algorithm,
        feature_kind=manifest.feature_kind,
        threshold=manifest.threshold,
        published_at=clock,
        published_by=principal.key_id,
        publisher_firm_id=principal.firm_id,
    )
    session.add(release)
    session.flush()
    return ModelReleasePublic.model_validate(release)


def _release(session: Session, name: str, version: str) -> ModelRelease:
    rel = session.get(ModelRelease, (name, version))
    if rel is None:
        raise NotFound(f"no published model {name}@{version}")
    return rel


@router.get("/models/{name}/{version}", name="models.get", dependencies=[authorize("models.get")])
def get_model(
    name: ModelNamePath, version: ModelVersionPath, session: SessionDep
) -> ModelReleaseDetail:
    """One release with its manifest bytes (base64) and signature."""
    rel = _release(session, name, version)
    return ModelReleaseDetail(
        **ModelReleasePublic.model_validate(rel).model_dump(),
        manifest_b64=base64.b64encode(rel.manifest).decode(),
    )


@router.get(
    "/models/{name}/{version}/artifact",
    name="models.artifact",
    dependencies=[authorize("models.artifact")],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_artifact(name: ModelNamePath, version: ModelVersionPath, session: SessionDep) -> Response:
    """The ONNX bytes; ``X-Renkei-Sha256`` carries their SHA-256 (informational: gateways
    check the signed digest, not this header)."""
    rel = _release(session, name, version)
    return Response(
        content=rel.onnx,
        media_type="application/octet-stream",
        headers={SHA_HEADER: rel.sha256, "ETag": f'"{rel.sha256}"'},
    )


@router.get("/model-keys", name="model_keys.list", dependencies=[authorize("model_keys.list")])
def list_keys(session: SessionDep) -> list[SigningKeyPublic]:
    """Registered signing keys (revoked ones included, flagged)."""
    rows = session.scalars(select(ModelSigningKey).order_by(ModelSigningKey.created_at))
    return [SigningKeyPublic.model_validate(r) for r in rows]


@router.post(
    "/model-keys",
    name="model_keys.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("model_keys.create")],
)
def create_key(body: SigningKeyCreate, session: SessionDep, clock: ClockDep) -> SigningKeyPublic:
    """Trust a public key for publishing (idempotent for the same key)."""
    try:
        pub = parse_public_key(body.public_key)
    except SigningKeyError as exc:
        raise Invalid(str(exc), detail={"loc": "body.public_key"}) from None
    kid = key_id(pub)
    row = session.get(ModelSigningKey, kid)
    if row is None:
        row = ModelSigningKey(
            key_id=kid, public_key=public_key_text(pub), label=body.label, created_at=clock
        )
        session.add(row)
        session.flush()
    elif row.revoked:
        raise Conflict(f"key {kid} was revoked; generate a new key")
    return SigningKeyPublic.model_validate(row)


@router.delete(
    "/model-keys/{key_id}",
    name="model_keys.revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("model_keys.revoke")],
)
def revoke_key(
    key_id: Annotated[
        str,
        FastPath(description="The signing key's id (`SigningKeyPublic.key_id`, 16 hex digits)."),
    ],
    session: SessionDep,
) -> None:
    """Stop accepting new releases signed with this key (published ones stay)."""
    row = session.get(ModelSigningKey, key_id)
    if row is None:
        raise NotFound(f"no signing key {key_id!r}")
    row.revoked = True


# --------------------------------------------------------------------------- rollout


def _deployment(session: Session, firm_id: str, deployment_id: int) -> Deployment:
    dep = session.get(Deployment, deployment_id)
    if dep is None or dep.firm_id != firm_id:
        raise NotFound(f"no deployment {deployment_id} in firm {firm_id!r}")
    return dep


@router.get(
    "/firms/{firm_id}/deployments",
    name="deployments.list",
    dependencies=[authorize("deployments.list")],
)
def list_deployments(
    firm_id: FirmIdPath,
    session: SessionDep,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Most deployments returned (the newest).")
    ] = 50,
) -> list[DeploymentPublic]:
    """The firm's deployments, newest first."""
    rows = session.scalars(
        select(Deployment)
        .where(Deployment.firm_id == firm_id)
        .order_by(Deployment.id.desc())
        .limit(limit)
    )
    return [DeploymentPublic.model_validate(d) for d in rows]


@router.post(
    "/firms/{firm_id}/deployments",
    name="deployments.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("deployments.create")],
)
def create(
    firm_id: FirmIdPath,
    body: DeploymentCreate,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
) -> DeploymentPublic:
    """Create a deployment (``pending``; the rollout controller takes it from there)."""
    try:
        dep = create_deployment(
            session,
            firm_id=firm_id,
            model_name=body.model,
            version=body.version,
            kind=body.kind,
            target=body.target,
            canary=body.canary,
            timeout_s=body.timeout_s,
            created_by=principal.key_id,
            now=clock,
        )
    except RolloutError as exc:
        if exc.code == "not_found":
            raise NotFound(exc.message) from None
        raise Invalid(exc.message, detail=exc.detail) from None
    return DeploymentPublic.model_validate(dep)


@router.get(
    "/firms/{firm_id}/deployments/{deployment_id}",
    name="deployments.get",
    dependencies=[authorize("deployments.get")],
)
def get_deployment(
    firm_id: FirmIdPath,
    deployment_id: Annotated[
        int, FastPath(description="The deployment's id (`DeploymentPublic.id`).")
    ],
    session: SessionDep,
) -> DeploymentPublic:
    """One deployment with every gateway's outcome."""
    return DeploymentPublic.model_validate(_deployment(session, firm_id, deployment_id))


def _fleet_model(fm: FleetModel) -> FleetModelPublic:
    last = None
    if fm.last_deployment_id is not None and fm.last_status is not None:
        last = LastResult(
            deployment_id=fm.last_deployment_id,
            version=fm.last_version,
            status=fm.last_status,
            stage=fm.last_stage,
            reason=fm.last_reason,
            at=fm.last_at,
        )
    return FleetModelPublic(
        name=fm.model_name,
        version=fm.version,
        sha256=fm.sha256,
        previous_version=fm.previous_version,
        source=fm.source,
        machines=list(fm.machines or []),
        desired_version=fm.desired_version,
        desired_deployment_id=fm.desired_deployment_id,
        pinned_version=fm.pinned_version,
        last_result=last,
    )


@router.get("/firms/{firm_id}/fleet", name="fleet.get", dependencies=[authorize("fleet.get")])
def fleet(firm_id: FirmIdPath, session: SessionDep) -> FleetView:
    """Every rollout-enabled gateway of the firm: model versions and last results."""
    models: dict[str, list[FleetModelPublic]] = {}
    for fm in session.scalars(
        select(FleetModel)
        .where(FleetModel.firm_id == firm_id)
        .order_by(FleetModel.gateway_id, FleetModel.model_name)
    ):
        models.setdefault(fm.gateway_id, []).append(_fleet_model(fm))
    online = {
        (g.site_id, g.gateway_id): g.online
        for g in session.scalars(select(GatewayStatus).where(GatewayStatus.firm_id == firm_id))
    }
    gateways = [
        FleetGatewayPublic(
            gateway_id=g.gateway_id,
            site_id=g.site_id,
            groups=list(g.groups or []),
            online=online.get((g.site_id, g.gateway_id)),
            reported_at=g.reported_at,
            models=models.get(g.gateway_id, []),
        )
        for g in session.scalars(
            select(FleetGateway)
            .where(FleetGateway.firm_id == firm_id)
            .order_by(FleetGateway.site_id, FleetGateway.gateway_id)
        )
    ]
    return FleetView(firm_id=firm_id, gateways=gateways)


def _fleet_row(session: Session, firm_id: str, gateway_id: str, model_name: str) -> FleetModel:
    if session.get(FleetGateway, (firm_id, gateway_id)) is None:
        raise NotFound(f"no rollout-enabled gateway {gateway_id!r} in firm {firm_id!r}")
    fm = session.get(FleetModel, (firm_id, gateway_id, model_name))
    if fm is None:
        fm = FleetModel(firm_id=firm_id, gateway_id=gateway_id, model_name=model_name)
        session.add(fm)
    return fm


@router.put(
    "/firms/{firm_id}/fleet/{gateway_id}/pins/{model_name}",
    name="fleet.pin",
    dependencies=[authorize("fleet.pin")],
)
def pin(
    firm_id: FirmIdPath,
    gateway_id: GatewayIdPath,
    model_name: ModelNamePath,
    body: PinBody,
    session: SessionDep,
) -> FleetModelPublic:
    """Pin the gateway's ``model_name`` to a version (see the module docstring)."""
    fm = _fleet_row(session, firm_id, gateway_id, model_name)
    fm.pinned_version = body.version
    session.flush()
    return _fleet_model(fm)


@router.delete(
    "/firms/{firm_id}/fleet/{gateway_id}/pins/{model_name}",
    name="fleet.unpin",
    dependencies=[authorize("fleet.unpin")],
)
def unpin(
    firm_id: FirmIdPath, gateway_id: GatewayIdPath, model_name: ModelNamePath, session: SessionDep
) -> FleetModelPublic:
    """Remove the pin (later site/group deployments reach the gateway again)."""
    fm = _fleet_row(session, firm_id, gateway_id, model_name)
    fm.pinned_version = None
    session.flush()
    return _fleet_model(fm)
