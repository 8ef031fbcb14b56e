"""Steps 1-3 of a model deployment: verify the signed entry, download, load the release.

:class:`Releases` is the part of :class:`renkei.edge.rollout.ModelRollout` (see
:mod:`renkei.edge.rollout.manager` for the whole sequence) that never trusts the registry's
word: the Ed25519 signature of a desired entry must be by a key of ``rollout.trusted_keys``
(:mod:`renkei.core.signing`), and the downloaded or stored ONNX and manifest bytes must hash
to the *signed* digests before :meth:`renkei.edge.model.inference.AnomalyModel.load` sees
them. Every refusal is an :class:`Outcome` naming the stage and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from renkei.core.errors import RenkeiError
from renkei.core.manifest import MANIFEST_FILE, ModelManifest
from renkei.core.signing import (
    ModelSignature,
    SignatureError,
    TrustedKeys,
    sha256_hex,
    verify_model,
)
from renkei.core.wire import DesiredModel
from renkei.edge.config import RolloutConfig
from renkei.edge.model.inference import AnomalyModel, ModelError, ModelIntegrityError
from renkei.edge.rollout.fetch import FetchError, fetch_release
from renkei.edge.rollout.store import ModelStore

__all__ = ["Outcome", "Releases", "Stage", "Status"]

Status = Literal["succeeded", "rejected", "rolled_back"]
Stage = Literal["verify", "download", "load", "shadow", "switch", "probation", "done"]


class Outcome(RenkeiError):
    """Ends a deployment attempt early with this result (status, failed stage, reason)."""

    def __init__(
        self, status: Status, stage: Stage, reason: str, checks: dict[str, float] | None = None
    ) -> None:
        super().__init__(reason)
        self.status: Status = status
        self.stage: Stage = stage
        self.reason = reason
        self.checks = checks or {}


class Releases:
    """Verifies, downloads and loads signed releases (module docstring).

    Args:
        cfg: the gateway's ``rollout`` section (trusted keys, API URL, size limit).
        store: where downloaded releases are kept.
        api_key: API key for downloads.
    """

    def __init__(self, *, cfg: RolloutConfig, store: ModelStore, api_key: str | None) -> None:
        self.cfg = cfg
        self.trusted = TrustedKeys(cfg.trusted_keys)
        self.store = store
        self._api_key = api_key

    def verify_signature(self, name: str, entry: DesiredModel) -> None:
        sig = (
            ModelSignature(key_id=entry.key_id, signature=entry.signature)
            if entry.signature and entry.key_id
            else None
        )
        try:
            verify_model(
                sig,
                self.trusted,
                name=name,
                version=entry.version,
                sha256=entry.sha256,
                manifest_sha256=entry.manifest_sha256,
            )
        except (SignatureError, ValidationError) as exc:
            code = exc.reason if isinstance(exc, SignatureError) else "malformed"
            raise Outcome("rejected", "verify", f"{code}: {exc}") from None

    def download(self, name: str, entry: DesiredModel) -> Path:
        try:
            manifest, onnx = fetch_release(
                api_url=self.cfg.api_url,
                name=name,
                version=entry.version,
                api_key=self._api_key,
                max_bytes=self.cfg.max_model_bytes,
                tls_ca_file=self.cfg.tls_ca_file,
            )
        except FetchError as exc:
            raise Outcome("rejected", "download", str(exc)) from None
        self.check_digests(entry, manifest, onnx)
        try:
            onnx_file = ModelManifest.model_validate_json(manifest).onnx_file
        except ValidationError as exc:  # pragma: no cover - the digest is signed
            raise Outcome("rejected", "load", f"invalid manifest: {exc}") from None
        sig = ModelSignature(key_id=entry.key_id, signature=entry.signature)
        return self.store.put(
            name, entry, manifest=manifest, onnx_file=onnx_file, onnx=onnx, signature=sig
        )

    @staticmethod
    def check_digests(entry: DesiredModel, manifest: bytes, onnx: bytes) -> None:
        got = sha256_hex(onnx)
        if got != entry.sha256:
            raise Outcome(
                "rejected",
                "verify",
                f"sha256 mismatch: the model bytes hash to {got}, the signed desired state "
                f"says {entry.sha256} (tampered or corrupted artifact)",
            )
        got = sha256_hex(manifest)
        if got != entry.manifest_sha256:
            raise Outcome(
                "rejected",
                "verify",
                f"sha256 mismatch: manifest.json hashes to {got}, the signed desired state "
                f"says {entry.manifest_sha256} (tampered or corrupted manifest)",
            )

    def load_verified(self, name: str, entry: DesiredModel, release_dir: Path) -> AnomalyModel:
        """Verify signature and digests of a release directory, then load it."""
        self.verify_signature(name, entry)
        try:
            manifest = (release_dir / MANIFEST_FILE).read_bytes()
            parsed = ModelManifest.model_validate_json(manifest)
            onnx = (release_dir / parsed.onnx_file).read_bytes()
        except (OSError, ValidationError) as exc:
            raise Outcome("rejected", "load", f"cannot read release: {exc}") from None
        self.check_digests(entry, manifest, onnx)
        if (parsed.name, parsed.version) != (name, entry.version):
            raise Outcome(
                "rejected",
                "verify",
                f"manifest is {parsed.name}@{parsed.version}, expected {name}@{entry.version}",
            )
        try:
            return AnomalyModel.load(model_dir=release_dir, expected_sha256=entry.sha256)
        except ModelIntegrityError as exc:
            raise Outcome("rejected", "verify", str(exc)) from None
        except ModelError as exc:
            raise Outcome("rejected", "load", str(exc)) from None
