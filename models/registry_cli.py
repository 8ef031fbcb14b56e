"""``renkei models`` commands for the model registry and rollout (mounted by
:mod:`renkei.models.cli` with :func:`register`).

Signing (local, :mod:`renkei.core.signing`)::

    renkei models keygen --out ~/.renkei/model-signing.pem   # prints the public key
    renkei models trust ed25519:...                           # admin: registry accepts it

Registry and rollout (``--api`` / ``RENKEI_API_URL``, ``--api-key`` / ``RENKEI_API_KEY``)::

    renkei models publish models/artifacts/skab-pump-t2 --key ~/.renkei/model-signing.pem
    renkei models releases [--name NAME]
    renkei models deploy skab-pump-t2@1.1.0 --to site:plant-1 --canary 1
    renkei models rollback skab-pump-t2 --to gateway:gw-07
    renkei models status 12
    renkei models pin gw-07 skab-pump-t2@1.0.0 / renkei models unpin gw-07 skab-pump-t2
    renkei models fleet

``deploy`` and ``rollback`` wait for the outcome by default (``--no-wait`` returns at once;
the rollout controller carries on either way) and exit 0 when every gateway succeeded, 1
when the deployment failed or was stopped by a failing canary, 3 when ``--wait-timeout``
passed first.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from renkei.models.api_client import ApiClient, ApiClientError

__all__ = ["register"]

ApiUrl = Annotated[
    str, typer.Option("--api", envvar="RENKEI_API_URL", help="Base URL of the Renkei API.")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="RENKEI_API_KEY", help="API key (rk_...).", show_default=False
    ),
]
Firm = Annotated[str | None, typer.Option("--firm", help="Firm id (default: the API key's firm).")]
DEFAULT_API = "http://127.0.0.1:8000"
_FINAL = {"succeeded", "failed", "stopped"}


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _client(api: str, api_key: str | None) -> ApiClient:
    if not api_key:
        raise _fail("an API key is needed: --api-key or RENKEI_API_KEY", 2)
    return ApiClient(api, api_key)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiClientError as exc:
        detail = f" {exc.detail}" if exc.detail not in (None, {}, []) else ""
        raise _fail(f"API error: {exc}{detail}") from None


def _firm(client: ApiClient, firm: str | None) -> str:
    if firm:
        return firm
    me = _call(client.get, "/me")
    return str(me["firm_id"])


def _split_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise _fail(f"expected NAME@VERSION, got {ref!r}", 2)
    return name, version


# --------------------------------------------------------------------------- signing


def keygen(
    out: Annotated[Path, typer.Option("--out", help="Private key file (PEM) to create.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Create an Ed25519 signing key: OUT (private, mode 0600) and OUT.pub (public)."""
    from renkei.core.signing import generate_private_key, key_id, private_key_pem, public_key_text

    pub_path = out.with_name(out.name + ".pub")
    if not force and (out.exists() or pub_path.exists()):
        raise _fail(f"{out} or {pub_path} exists; use --force to replace", 2)
    key = generate_private_key()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    os.chmod(out, 0o600)
    text = public_key_text(key)
    pub_path.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"private key: {out} (keep it secret; or put it in RENKEI_MODEL_SIGNING_KEY)")
    typer.echo(f"public key:  {pub_path}")
    typer.echo(f"key id:      {key_id(key)}")
    typer.echo(f"\n{text}\n")
    typer.echo("Gateways: add it under rollout.trusted_keys in their config.")
    typer.echo("Registry: an admin runs `renkei models trust <public key>`.")


def trust(
    public_key: Annotated[str, typer.Argument(help="ed25519:<base64>, or a .pub file.")],
    label: Annotated[str, typer.Option("--label", help="Whose key this is.")] = "",
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Register a public key with the registry (admin key needed)."""
    text = public_key
    if not text.startswith("ed25519:") and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8").strip()
    client = _client(api, api_key)
    row = _call(client.request, "POST", "/model-keys", {"public_key": text, "label": label})
    typer.echo(f"trusted key {row['key_id']} ({row['label'] or 'no label'})")


# --------------------------------------------------------------------------- registry


def publish(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (manifest.json + ONNX).")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Private signing key (default: RENKEI_MODEL_SIGNING_KEY)."),
    ] = None,
    write_signature: Annotated[
        bool, typer.Option("--write-signature", help="Also write signature.json into the dir.")
    ] = False,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Sign a model directory and upload it to the registry."""
    from pydantic import ValidationError

    from renkei.core import signing
    from renkei.core.manifest import MANIFEST_FILE, ModelManifest

    try:
        manifest_bytes = (model_dir / MANIFEST_FILE).read_bytes()
        manifest = ModelManifest.model_validate_json(manifest_bytes)
        onnx = (model_dir / manifest.onnx_file).read_bytes()
    except OSError as exc:
        raise _fail(f"{model_dir}: {exc}", 2) from None
    except ValidationError as exc:
        raise _fail(f"{model_dir / MANIFEST_FILE}: invalid manifest: {exc}", 2) from None
    sha = signing.sha256_hex(onnx)
    if sha != manifest.sha256:
        raise _fail(
            f"{model_dir}: the ONNX bytes hash to {sha}, the manifest says {manifest.sha256}"
        )
    try:
        private = signing.load_private_key(key)
    except signing.SigningKeyError as exc:
        raise _fail(str(exc), 2) from None
    sig = signing.sign_model(
        private,
        name=manifest.name,
        version=manifest.version,
        sha256=sha,
        manifest_sha256=signing.sha256_hex(manifest_bytes),
    )
    if write_signature:
        signing.write_signature(sig, model_dir)
    client = _client(api, api_key)
    rel = _call(
        client.request,
        "POST",
        "/models",
        {
            "manifest_b64": base64.b64encode(manifest_bytes).decode(),
            "onnx_b64": base64.b64encode(onnx).decode(),
            "signature": sig.model_dump(),
        },
    )
    typer.echo(
        f"published {rel['name']}@{rel['version']} sha256 {rel['sha256']} "
        f"({rel['size_bytes']} bytes) signed by {rel['key_id']}"
    )


def releases(
    name: Annotated[str | None, typer.Option("--name", help="Only this model.")] = None,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """List published releases (newest first)."""
    rows = _call(_client(api, api_key).get, "/models", name=name)
    for r in rows:
        typer.echo(
            f"{r['name']:20s} {r['version']:10s} {r['sha256'][:12]} {r['feature_kind']:6s} "
            f"threshold {r['threshold']:.6g}  key {r['key_id']}  {r['published_at']}"
        )


# --------------------------------------------------------------------------- rollout


def _show(dep: dict[str, Any]) -> None:
    ver = dep["version"] or "previous"
    typer.echo(
        f"deployment {dep['id']}: {dep['kind']} {dep['model_name']}@{ver} -> {dep['target']} "
        f"(canary {dep['canary']}): {dep['status']}"
        + (f" - {dep['reason']}" if dep["reason"] else "")
    )
    for t in dep["targets"]:
        wave = "canary" if t["wave"] == 0 else "rest"
        why = f" [{t['stage']}] {t['reason']}" if t["reason"] or t["stage"] else ""
        typer.echo(
            f"  {t['site_id']}/{t['gateway_id']:16s} {wave:6s} {t['version'] or '-':10s} "
            f"{t['status']}{why}"
        )


def _wait(client: ApiClient, firm: str, dep: dict[str, Any], timeout_s: float) -> None:
    seen = {t["gateway_id"]: t["status"] for t in dep["targets"]}
    deadline = time.monotonic() + timeout_s
    while dep["status"] not in _FINAL:
        if time.monotonic() >= deadline:
            _show(dep)
            raise _fail(
                f"deployment {dep['id']} still {dep['status']} after {timeout_s:g} s "
                "(it continues; see `renkei models status`)",
                3,
            )
        time.sleep(1.0)
        dep = _call(client.get, f"/firms/{firm}/deployments/{dep['id']}")
        for t in dep["targets"]:
            if seen.get(t["gateway_id"]) != t["status"]:
                seen[t["gateway_id"]] = t["status"]
                typer.echo(f"  {t['gateway_id']}: {t['status']} {t['reason']}".rstrip())
    _show(dep)
    if dep["status"] != "succeeded":
        raise typer.Exit(1)


def _deploy(
    *,
    body: dict[str, Any],
    firm: str | None,
    wait: bool,
    wait_timeout: float,
    api: str,
    api_key: str | None,
) -> None:
    client = _client(api, api_key)
    firm_id = _firm(client, firm)
    dep = _call(client.request, "POST", f"/firms/{firm_id}/deployments", body)
    _show(dep)
    if wait:
        _wait(client, firm_id, dep, wait_timeout)


Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the outcome.")]
WaitTimeout = Annotated[
    float, typer.Option("--wait-timeout", help="Give up waiting after this many seconds.")
]
Canary = Annotated[
    int, typer.Option("--canary", help="Gateways in the canary wave (0 = all at once).")
]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", help="Fail gateways of a wave that do not report within S s."),
]
To = Annotated[
    str, typer.Option("--to", help="gateway:ID, site:ID, group:NAME or all (comma-separated).")
]


def deploy(
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION")],
    to: To,
    canary: Canary = 0,
    timeout: Timeout = None,
    firm: Firm = None,
    wait: Wait = True,
    wait_timeout: WaitTimeout = 600.0,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Deploy a published release to gateways (canary first, if asked)."""
    name, version = _split_ref(ref)
    body = {"model": name, "version": version, "target": to, "canary": canary}
    if timeout is not None:
        body["timeout_s"] = timeout
    _deploy(body=body, firm=firm, wait=wait, wait_timeout=wait_timeout, api=api, api_key=api_key)


def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    to: To,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Go to this version (default: each one's previous)."),
    ] = None,
    canary: Canary = 0,
    timeout: Timeout = None,
    firm: Firm = None,
    wait: Wait = True,
    wait_timeout: WaitTimeout = 600.0,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Return gateways to the version they ran before (or to --version)."""
    body: dict[str, Any] = {"model": name, "kind": "rollback", "target": to, "canary": canary}
    if version is not None:
        body["version"] = version
    if timeout is not None:
        body["timeout_s"] = timeout
    _deploy(body=body, firm=firm, wait=wait, wait_timeout=wait_timeout, api=api, api_key=api_key)


def status(
    deployment_id: Annotated[int, typer.Argument(help="Deployment id.")],
    firm: Firm = None,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Show one deployment and every gateway's outcome."""
    client = _client(api, api_key)
    _show(_call(client.get, f"/firms/{_firm(client, firm)}/deployments/{deployment_id}"))


def pin(
    gateway: Annotated[str, typer.Argument(help="Gateway id.")],
    ref: Annotated[str, typer.Argument(metavar="NAME@VERSION")],
    firm: Firm = None,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Pin a gateway's model: site/group/all deployments skip it (gateway:ID ones do not)."""
    name, version = _split_ref(ref)
    client = _client(api, api_key)
    path = f"/firms/{_firm(client, firm)}/fleet/{gateway}/pins/{name}"
    _call(client.request, "PUT", path, {"version": version})
    typer.echo(f"{gateway}: {name} pinned to {version}")


def unpin(
    gateway: Annotated[str, typer.Argument(help="Gateway id.")],
    name: Annotated[str, typer.Argument(help="Model name.")],
    firm: Firm = None,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Remove a pin."""
    client = _client(api, api_key)
    _call(client.request, "DELETE", f"/firms/{_firm(client, firm)}/fleet/{gateway}/pins/{name}")
    typer.echo(f"{gateway}: {name} unpinned")


def fleet(
    firm: Firm = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    api: ApiUrl = DEFAULT_API,
    api_key: ApiKey = None,
) -> None:
    """Every gateway's model versions and last deployment result."""
    import orjson

    client = _client(api, api_key)
    view = _call(client.get, f"/firms/{_firm(client, firm)}/fleet")
    if as_json:
        typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
        return
    for g in view["gateways"]:
        online = {True: "online", False: "offline", None: "?"}[g["online"]]
        groups = ",".join(g["groups"]) or "-"
        typer.echo(f"{g['site_id']}/{g['gateway_id']} ({online}, groups {groups})")
        for m in g["models"]:
            last = m["last_result"]
            res = (
                f"last: #{last['deployment_id']} {last['version']} {last['status']}"
                + (f" ({last['reason']})" if last["reason"] else "")
                if last
                else "last: -"
            )
            pin_txt = f" pinned {m['pinned_version']}" if m["pinned_version"] else ""
            ver, prev = m["version"] or "-", m["previous_version"] or "-"
            typer.echo(
                f"  {m['name']:20s} {ver:10s} prev {prev:10s}"
                f" desired {m['desired_version'] or '-':10s}{pin_txt}  {res}"
            )


def register(app: typer.Typer) -> None:
    """Add the registry and rollout commands to ``app``."""
    for fn in (keygen, trust, publish, releases, deploy, rollback, status, pin, unpin, fleet):
        app.command(fn.__name__)(fn)
