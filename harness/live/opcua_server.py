"""A real asyncua OPC UA server for the ``opcua`` driver's tests and soak bench.

Run as a subprocess (so tests can kill -9 and restart it)::

    python -m harness.live.opcua_server --port 4840 --spec '{"vars": [...]}' \
        [--cert server.der --key server.pem --trust DIR] [--user NAME:PASSWORD]

``--spec`` (JSON): ``ns_uri`` (default ``urn:renkei:test``), ``period_ms`` (value updates,
default 100), ``items`` (N extra Double variables ``v0..v{N-1}``, value = tick), ``vars``:
a list of ``{"name", "type": "double"|"int"|"bool"|"string", "start", "step", "unit",
"status"}``; every variable is ``ns=<idx>;s=<name>`` under the object ``Machine``
(browse path ``Machine/<name>``); its value at tick k is ``start + k*step`` (bool: k odd,
string: ``"s<k>"``); ``status`` (e.g. ``BadSensorFailure``) publishes that StatusCode
instead of a value; ``unit`` adds an ``EngineeringUnits`` property. The tick restarts at 0
after a restart. ``--first-tick`` lets a restarted server continue the sequence.

With ``--cert``/``--key`` the server offers only Basic256Sha256 SignAndEncrypt and Sign
and accepts only the client certificates (DER or PEM) in ``--trust``; ``--user`` allows
only that user (no anonymous). Prints ``READY`` when serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua as _ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from cryptography import x509

ua: Any = _ua  # the generated ua types are loosely typed for a test server


class _Users(UserManager):
    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username == self.name and password == self.password:
            return User(role=UserRole.User)
        return None


def _load(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


async def main(args: argparse.Namespace) -> None:
    spec: dict[str, Any] = json.loads(args.spec)
    users = _Users(*args.user.split(":", 1)) if args.user else None
    server = Server(user_manager=users)
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{args.port}/renkei/test")
    server.set_server_name("renkei test server")
    if args.cert:
        await server.load_certificate(args.cert)
        await server.load_private_key(args.key)
        server.set_security_policy(
            [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
            ]
        )
        trusted = [_load(p).fingerprint(_sha256()) for p in Path(args.trust).iterdir()]

        async def validate(cert: x509.Certificate, _app: ua.ApplicationDescription) -> None:
            if cert.fingerprint(_sha256()) not in trusted:
                raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

        server.set_certificate_validator(validate)
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if users is not None:
        server.set_identity_tokens([ua.UserNameIdentityToken])
    idx = await server.register_namespace(spec.get("ns_uri", "urn:renkei:test"))
    machine = await server.nodes.objects.add_object(ua.NodeId("Machine", idx), f"{idx}:Machine")
    variables: list[tuple[Any, dict[str, Any]]] = []
    vtypes = {
        "double": ua.VariantType.Double,
        "int": ua.VariantType.Int32,
        "bool": ua.VariantType.Boolean,
        "string": ua.VariantType.String,
    }
    items = [{"name": f"v{i}", "type": "double", "step": 1.0} for i in range(spec.get("items", 0))]
    for v in [*spec.get("vars", []), *items]:
        kind = v.get("type", "double")
        node = await machine.add_variable(
            ua.NodeId(v["name"], idx), f"{idx}:{v['name']}", _value(v, 0), vtypes[kind]
        )
        if v.get("unit"):
            eu = ua.EUInformation(
                NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                UnitId=-1,
                DisplayName=ua.LocalizedText(v["unit"]),
                Description=ua.LocalizedText(v["unit"]),
            )
            await node.add_property(
                ua.NodeId(f"{v['name']}.EU", idx),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(eu, ua.VariantType.ExtensionObject),
            )
        variables.append((node, v))
    await server.start()
    print("READY", flush=True)
    period = spec.get("period_ms", 100) / 1000
    tick = args.first_tick
    try:
        while True:
            now = datetime.now(UTC)
            for node, v in variables:
                kind = vtypes[v.get("type", "double")]
                if v.get("status"):
                    code = ua.StatusCode(getattr(ua.StatusCodes, v["status"]))
                    dv = ua.DataValue(StatusCode=code, SourceTimestamp=now, ServerTimestamp=now)
                else:
                    dv = ua.DataValue(
                        ua.Variant(_value(v, tick), kind), SourceTimestamp=now, ServerTimestamp=now
                    )
                await server.write_attribute_value(node.nodeid, dv)
            tick += 1
            await asyncio.sleep(period)
    finally:
        await server.stop()


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _value(v: dict[str, Any], tick: int) -> Any:
    kind = v.get("type", "double")
    if kind == "bool":
        return tick % 2 == 1
    if kind == "string":
        return f"s{tick}"
    value = v.get("start", 0) + tick * v.get("step", 1)
    return int(value) if kind == "int" else float(value)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", default="{}")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--trust")
    parser.add_argument("--user")
    parser.add_argument("--first-tick", type=int, default=0)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
