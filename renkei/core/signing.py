"""Ed25519 signatures of exported models: who vouches for the bytes a gateway will run.

The engineer who publishes a model signs it with a private key that never leaves them
(a PEM file, ``renkei models publish --key PATH``, or the environment variable
``RENKEI_MODEL_SIGNING_KEY``); the registry (:mod:`renkei.cloud.api.routers.models`) and every
gateway (:mod:`renkei.edge.rollout`) check the signature, each against keys *it* trusts: the
registry against the keys an admin registered, a gateway against the public keys in its own
configuration (``rollout.trusted_keys``). A gateway never trusts the registry alone.

Signed message (UTF-8, exactly these five ``\\n``-terminated lines)::

    renkei-model-signature/v1
    name=<manifest name>
    version=<manifest version>
    sha256=<SHA-256 hex of the ONNX bytes>
    manifest_sha256=<SHA-256 hex of the exact manifest.json bytes>

Names and versions cannot contain ``\\n`` or ``=`` (manifest rules), hex digests are
lowercase, so the encoding is unambiguous. Binding both digests means neither the graph
nor its manifest (threshold, inputs, window length) can be swapped under a valid signature,
and binding name and version means a signature cannot be replayed for another release.

Key formats:

- public key: ``ed25519:<base64 of the 32 raw bytes>`` (one line; goes into gateway
  configs and ``POST /api/v1/model-keys``);
- key id: first 16 hex digits of SHA-256 over the 32 raw public-key bytes;
- private key: PKCS#8 PEM (``renkei models keygen``), or in the environment variable either
  that PEM text or ``ed25519-private:<base64 of the 32-byte seed>``;
- signature file beside the model (``signature.json``)::

      {"v": 1, "alg": "ed25519", "key_id": "<16 hex>", "signature": "<base64, 64 bytes>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from renkei.core.errors import ModelError, RenkeiError

__all__ = [
    "KEY_ENV",
    "SIGNATURE_FILE",
    "ModelSignature",
    "SignatureError",
    "SigningKeyError",
    "TrustedKeys",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "parse_public_key",
    "private_key_pem",
    "public_key_text",
    "read_signature",
    "sha256_hex",
    "sign_model",
    "signing_message",
    "verify_model",
    "write_signature",
]

#: Environment variable that may hold the private signing key.
KEY_ENV: Final = "RENKEI_MODEL_SIGNING_KEY"
#: File name of the signature beside ``manifest.json``.
SIGNATURE_FILE: Final = "signature.json"
_PREFIX_PUBLIC: Final = "ed25519:"
_PREFIX_PRIVATE: Final = "ed25519-private:"
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_NAME_OK: Final = re.compile(r"^[^\n=]{1,128}$")


class SigningKeyError(RenkeiError, ValueError):
    """A key that cannot be read or parsed (the message says which and why)."""


class SignatureError(ModelError, ValueError):
    """A model signature that is missing, malformed, by an untrusted key, or invalid.

    ``reason`` is one of ``unsigned``, ``malformed``, ``untrusted_key``, ``bad_signature``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelSignature(BaseModel):
    """A detached model signature (``signature.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(default=1, description="Format version (1).")
    alg: Literal["ed25519"] = Field(default="ed25519", description="Signature algorithm.")
    key_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] = Field(
        description="Id of the signing key (16 lowercase hex digits)."
    )
    signature: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="Base64 of the 64 signature bytes over (name, version, sha256, "
        "manifest_sha256)."
    )


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def signing_message(*, name: str, version: str, sha256: str, manifest_sha256: str) -> bytes:
    """The canonical byte string that is signed (see the module docstring).

    Raises:
        SignatureError: ``malformed`` when a field cannot be encoded unambiguously (a name
            or version with ``\\n`` or ``=``, a digest that is not 64 lowercase hex digits).
    """
    for label, value in (("name", name), ("version", version)):
        if not _NAME_OK.match(value):
            raise SignatureError("malformed", f"{label} {value!r} cannot be signed")
    for label, value in (("sha256", sha256), ("manifest_sha256", manifest_sha256)):
        if not _HEX64.match(value):
            raise SignatureError("malformed", f"{label} {value!r} is not 64 lowercase hex")
    return (
        "renkei-model-signature/v1\n"
        f"name={name}\nversion={version}\nsha256={sha256}\nmanifest_sha256={manifest_sha256}\n"
    ).encode()


# ----------------------------------------------------------------------------- keys


def generate_private_key() -> Ed25519PrivateKey:
    """A new random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM (unencrypted) of ``key``; store it with mode 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``ed25519:<base64>`` of a public key (or of a private key's public half)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _PREFIX_PUBLIC + base64.b64encode(_raw_public(pub)).decode()


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key bytes."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return sha256_hex(_raw_public(pub))[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64 of 32 bytes>``.

    Raises:
        SigningKeyError: another prefix, bad base64 or not 32 bytes.
    """
    text = text.strip()
    if not text.startswith(_PREFIX_PUBLIC):
        raise SigningKeyError(f"public key must look like 'ed25519:<base64>', got {text[:24]!r}")
    try:
        raw = base64.b64decode(text[len(_PREFIX_PUBLIC) :], validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("public key is not valid base64") from None
    if len(raw) != 32:
        raise SigningKeyError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _parse_private(text: str, where: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith(_PREFIX_PRIVATE):
        try:
            seed = base64.b64decode(text[len(_PREFIX_PRIVATE) :], validate=True)
        except (binascii.Error, ValueError):
            raise SigningKeyError(f"{where}: private key is not valid base64") from None
        if len(seed) != 32:
            raise SigningKeyError(f"{where}: an Ed25519 seed has 32 bytes, got {len(seed)}")
        return Ed25519PrivateKey.from_private_bytes(seed)
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: the key is {type(key).__name__}, not Ed25519")
    return key


def load_private_key(
    path: Path | None = None, *, env: Mapping[str, str] | None = None
) -> Ed25519PrivateKey:
    """The engineer's signing key: from ``path`` if given, else from ``RENKEI_MODEL_SIGNING_KEY``.

    Raises:
        SigningKeyError: no key given, unreadable file, or not an Ed25519 private key.
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror}") from None
        return _parse_private(text, str(path))
    value = (os.environ if env is None else env).get(KEY_ENV)
    if not value:
        raise SigningKeyError(f"no signing key: pass --key PATH or set {KEY_ENV}")
    return _parse_private(value, KEY_ENV)


class TrustedKeys:
    """A set of trusted public keys, looked up by key id.

    Args:
        keys: ``ed25519:<base64>`` strings or parsed public keys.

    Raises:
        SigningKeyError: a key string cannot be parsed.
    """

    def __init__(self, keys: Iterable[str | Ed25519PublicKey]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for k in keys:
            pub = parse_public_key(k) if isinstance(k, str) else k
            self._keys[key_id(pub)] = pub

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def ids(self) -> list[str]:
        """Key ids, sorted."""
        return sorted(self._keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        """The key with id ``kid``, or ``None``."""
        return self._keys.get(kid)


# ----------------------------------------------------------------------- sign/verify


def sign_model(
    key: Ed25519PrivateKey, *, name: str, version: str, sha256: str, manifest_sha256: str
) -> ModelSignature:
    """Sign a model release (see :func:`signing_message`)."""
    msg = signing_message(
        name=name, version=version, sha256=sha256, manifest_sha256=manifest_sha256
    )
    return ModelSignature(key_id=key_id(key), signature=base64.b64encode(key.sign(msg)).decode())


def verify_model(
    signature: ModelSignature | None,
    trusted: TrustedKeys,
    *,
    name: str,
    version: str,
    sha256: str,
    manifest_sha256: str,
) -> str:
    """Check a model signature; return the id of the key that made it.

    Raises:
        SignatureError: ``unsigned`` (``signature`` is None), ``untrusted_key`` (its key id
            is not in ``trusted``), ``malformed`` (bad base64 or field) or ``bad_signature``
            (the signature does not match this name, version and digests).
    """
    if signature is None:
        raise SignatureError("unsigned", f"model {name} {version} is not signed")
    pub = trusted.get(signature.key_id)
    if pub is None:
        raise SignatureError(
            "untrusted_key",
            f"model {name} {version} is signed by key {signature.key_id}, which is not trusted "
            f"(trusted: {', '.join(trusted.ids) or 'none'})",
        )
    msg = signing_message(
        name=name, version=version, sha256=sha256, manifest_sha256=manifest_sha256
    )
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed", "signature is not valid base64") from None
    try:
        pub.verify(raw, msg)
    except InvalidSignature:
        raise SignatureError(
            "bad_signature",
            f"signature of model {name} {version} by key {signature.key_id} does not match its "
            "name, version and SHA-256 digests (tampered or re-labelled)",
        ) from None
    return signature.key_id


def write_signature(signature: ModelSignature, model_dir: Path) -> Path:
    """Write ``signature.json`` into ``model_dir``; return its path."""
    path = Path(model_dir) / SIGNATURE_FILE
    path.write_text(signature.model_dump_json() + "\n", encoding="utf-8")
    return path


def read_signature(model_dir: Path) -> ModelSignature | None:
    """``model_dir/signature.json``, or ``None`` if there is none.

    Raises:
        SignatureError: ``malformed`` when the file exists but is not a valid signature.
    """
    path = Path(model_dir) / SIGNATURE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return ModelSignature.model_validate_json(raw)
    except ValueError as exc:
        raise SignatureError("malformed", f"{path}: {exc}") from None
