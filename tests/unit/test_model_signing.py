"""Ed25519 model signatures: canonical message, keys, sign/verify, tamper detection."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from renkei.core.signing import (
    KEY_ENV,
    ModelSignature,
    SignatureError,
    SigningKeyError,
    TrustedKeys,
    generate_private_key,
    key_id,
    load_private_key,
    parse_public_key,
    private_key_pem,
    public_key_text,
    read_signature,
    sign_model,
    signing_message,
    verify_model,
    write_signature,
)

FACTS = {
    "name": "skab-pump-t2",
    "version": "1.1.0",
    "sha256": "a" * 64,
    "manifest_sha256": "b" * 64,
}


def test_signing_message_is_the_documented_byte_string() -> None:
    assert signing_message(**FACTS) == (
        b"renkei-model-signature/v1\nname=skab-pump-t2\nversion=1.1.0\n"
        b"sha256=" + b"a" * 64 + b"\nmanifest_sha256=" + b"b" * 64 + b"\n"
    )


@pytest.mark.parametrize(
    "over",
    [
        {"name": "a\nsha256=x"},
        {"version": "1.0=0"},
        {"sha256": "A" * 64},
        {"manifest_sha256": "b" * 63},
    ],
)
def test_signing_message_refuses_ambiguous_fields(over: dict[str, str]) -> None:
    with pytest.raises(SignatureError) as exc:
        signing_message(**(FACTS | over))
    assert exc.value.reason == "malformed"


def test_sign_and_verify_round_trip() -> None:
    key = generate_private_key()
    sig = sign_model(key, **FACTS)
    assert sig.key_id == key_id(key) and len(sig.key_id) == 16
    assert len(base64.b64decode(sig.signature)) == 64
    trusted = TrustedKeys([public_key_text(key)])
    assert verify_model(sig, trusted, **FACTS) == sig.key_id


@pytest.mark.parametrize(
    "over",
    [
        {"name": "other-model"},
        {"version": "1.1.1"},
        {"sha256": "c" * 64},
        {"manifest_sha256": "c" * 64},
    ],
)
def test_any_changed_fact_breaks_the_signature(over: dict[str, str]) -> None:
    key = generate_private_key()
    sig = sign_model(key, **FACTS)
    with pytest.raises(SignatureError) as exc:
        verify_model(sig, TrustedKeys([key.public_key()]), **(FACTS | over))
    assert exc.value.reason == "bad_signature"


def test_unsigned_untrusted_and_malformed() -> None:
    key, other = generate_private_key(), generate_private_key()
    trusted = TrustedKeys([public_key_text(key)])
    with pytest.raises(SignatureError) as exc:
        verify_model(None, trusted, **FACTS)
    assert exc.value.reason == "unsigned"
    with pytest.raises(SignatureError) as exc:
        verify_model(sign_model(other, **FACTS), trusted, **FACTS)
    assert exc.value.reason == "untrusted_key"
    assert key_id(other) in str(exc.value)
    bad = ModelSignature(key_id=key_id(key), signature="not base64!")
    with pytest.raises(SignatureError) as exc:
        verify_model(bad, trusted, **FACTS)
    assert exc.value.reason == "malformed"
    # a signature by the trusted key id but made with another key
    forged = ModelSignature(key_id=key_id(key), signature=sign_model(other, **FACTS).signature)
    with pytest.raises(SignatureError) as exc:
        verify_model(forged, trusted, **FACTS)
    assert exc.value.reason == "bad_signature"


def test_public_key_text_round_trip_and_errors() -> None:
    key = generate_private_key()
    text = public_key_text(key)
    assert text.startswith("ed25519:")
    assert key_id(parse_public_key(text)) == key_id(key)
    for bad in ("rsa:AAAA", "ed25519:***", "ed25519:" + base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(SigningKeyError):
            parse_public_key(bad)
    with pytest.raises(SigningKeyError):
        TrustedKeys(["ed25519:nope"])


def test_load_private_key_from_file_and_env(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "k.pem"
    path.write_bytes(private_key_pem(key))
    assert key_id(load_private_key(path)) == key_id(key)
    pem_env = {KEY_ENV: private_key_pem(key).decode()}
    assert key_id(load_private_key(env=pem_env)) == key_id(key)
    seed = os.urandom(32)
    seed_env = {KEY_ENV: "ed25519-private:" + base64.b64encode(seed).decode()}
    assert len(key_id(load_private_key(env=seed_env))) == 16
    with pytest.raises(SigningKeyError, match=KEY_ENV):
        load_private_key(env={})
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(SigningKeyError, match="PEM"):
        load_private_key(tmp_path / "junk.pem")


def test_signature_file_round_trip(tmp_path: Path) -> None:
    assert read_signature(tmp_path) is None
    sig = sign_model(generate_private_key(), **FACTS)
    write_signature(sig, tmp_path)
    assert read_signature(tmp_path) == sig
    (tmp_path / "signature.json").write_text("{}")
    with pytest.raises(SignatureError):
        read_signature(tmp_path)
