"""The Raspberry Pi gateway installation (deploy/pi/), run for real into temporary roots.

``build-bundle.sh --wheels`` builds the wheel, the locked core requirements and the wheels
of those requirements for this machine's ``python3`` (downloaded from PyPI, checked
against uv.lock's hashes); ``install.sh --root --offline`` installs them into a temporary
root (no user, no chown, no systemctl) with the network disabled and an empty uv cache,
so from the bundle alone, as on a Pi without internet access. Checked: the tree and its
modes, the systemd unit (``systemd-analyze verify`` and ``security`` when available, its
keys always), that the virtualenv holds the edge part only and runs the agent,
idempotency, upgrade, rollback, refusal of a bad config, the pip installer, and
uninstall. Also the sd_notify client (``renkei.edge.watchdog``) against a real Unix datagram
socket.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.services import free_port
from renkei.edge.watchdog import Notifier

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PI = REPO / "deploy" / "pi"
UNIT = PI / "renkei-gateway.service"


# --------------------------------------------------------------------- helpers


def uv_dir() -> str:
    """The directory of the ``uv`` executable: on PATH, else the binary of ``python3 -m uv``
    (``./dev`` installs uv with ``pip install --user``, whose bin/ may not be on PATH)."""
    found = shutil.which("uv")
    if found is not None:
        return str(Path(found).parent)
    probe = subprocess.run(
        ["python3", "-c", "import uv; print(uv.find_uv_bin())"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.fail(f"uv is neither on PATH nor importable by python3 (./dev sync): {probe.stderr}")
    return str(Path(probe.stdout.strip()).parent)


def uv_env(tmp: Path, *, offline: bool = True) -> dict[str, str]:
    """Environment with ``uv`` on PATH.

    Offline (installing): no network, an empty uv cache of its own and no pip
    configuration (this machine's find-links or indexes), so that an install succeeds
    only from the bundle. Online (building the bundle): as the workstation has it.
    """
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{uv_dir()}:{env['PATH']}"
    if offline:
        for key in [k for k in env if k.startswith("PIP_")]:
            del env[key]
        env |= {
            "UV_OFFLINE": "1",
            "UV_CACHE_DIR": str(tmp / "empty-uv-cache"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
        }
    return env


def system_python() -> str:
    """The interpreter for the gateway venv: Debian's python3 (as on the Pi) if >= 3.11."""
    for candidate in ("/usr/bin/python3", getattr(sys, "_base_executable", sys.executable)):
        if os.access(candidate, os.X_OK):
            ok = subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
                timeout=30,
            )
            if ok.returncode == 0:
                return candidate
    return sys.executable


def run(
    argv: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line}"
        current.setdefault(key, []).append(value)
    return sections


@dataclass
class Install:
    """One installation into a temporary root."""

    root: Path
    env: dict[str, str]
    bundle: Path
    installer: str = "uv"

    @property
    def prefix(self) -> Path:
        return self.root / "opt" / "renkei"

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "renkei"

    @property
    def state(self) -> Path:
        return self.root / "var" / "lib" / "renkei"

    def install(self, *args: str, bundle: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run(
            [
                "bash",
                str((bundle or self.bundle) / "install.sh"),
                "--root",
                str(self.root),
                "--offline",
                "--installer",
                self.installer,
                "--python",
                system_python(),
                *args,
            ],
            self.env,
        )

    def current(self) -> str:
        return os.readlink(self.prefix / "venv")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle")
    out = tmp / "renkei-gateway"
    done = run(
        [
            "bash",
            str(PI / "build-bundle.sh"),
            "--out",
            str(out),
            "--wheels",
            "--python",
            system_python(),
        ],
        uv_env(tmp, offline=False),
    )
    assert done.returncode == 0, done.stderr
    return out


def gateway_config(root: Path, broker_port: int) -> str:
    """The example config, pointed at this root and at a closed local port."""
    text = (PI / "gateway.yaml.example").read_text()
    for old, new in {
        "host: mqtt.example.com": "host: 127.0.0.1",
        "port: 8883": f"port: {broker_port}",
        "tls_ca_file: /etc/renkei/tls/ca.crt": f"tls_ca_file: {root}/etc/renkei/tls/ca.crt",
        "dir: /opt/renkei/models/": f"dir: {root}/opt/renkei/models/",
    }.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def new_install(tmp: Path, bundle: Path, *args: str, installer: str = "uv") -> Install:
    """Install ``bundle`` into ``tmp/root`` with a config, a password file and a CA,
    offline (from the bundle's wheels) with ``installer`` (uv or pip)."""
    root = tmp / "root"
    files = tmp / "files"
    files.mkdir(parents=True)
    (files / "gateway.yaml").write_text(gateway_config(root, free_port()))
    (files / "gateway.env").write_text("RENKEI_MQTT_PASSWORD=Pi-test-password-9fK2xQ7\n")
    (files / "ca.crt").write_bytes(self_signed_pem())
    inst = Install(root=root, env=uv_env(tmp), bundle=bundle, installer=installer)
    done = inst.install(
        "--config",
        str(files / "gateway.yaml"),
        "--env-file",
        str(files / "gateway.env"),
        "--ca",
        str(files / "ca.crt"),
        *args,
    )
    assert done.returncode == 0, done.stderr
    return inst


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, bundle: Path) -> Install:
    """An installation as on a Pi (with bytecode compiled: ~20 s on two cores)."""
    return new_install(tmp_path_factory.mktemp("pi"), bundle)


def self_signed_pem() -> bytes:
    """A throwaway CA certificate (the agent loads the CA file when it starts)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pi test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path below ``root``: mode and content (file hash or link target)."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = (0, os.readlink(p))
            elif p.is_file() and name != ".install.lock":
                out[rel] = (mode(p), f"{p.stat().st_size}:{p.stat().st_mtime_ns}")
            elif p.is_dir():
                out[rel] = (mode(p), "dir")
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return out


# --------------------------------------------------------------------- the unit


def test_unit_file_has_restart_watchdog_and_hardening() -> None:
    unit = parse_unit(UNIT.read_text())
    svc = unit["Service"]
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "Restart": ["on-failure"],
        "User": ["renkei"],
        "Group": ["renkei"],
        "ExecStart": ["/opt/renkei/bin/renkei-gateway run --config /etc/renkei/gateway.yaml"],
        "EnvironmentFile": ["-/etc/renkei/gateway.env"],
        "StateDirectory": ["renkei"],
        "ReadWritePaths": ["/var/lib/renkei"],
        "ProtectSystem": ["strict"],
        "NoNewPrivileges": ["yes"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "CapabilityBoundingSet": [""],
    }
    for key, value in expected.items():
        assert svc.get(key) == value, key
    assert int(svc["WatchdogSec"][0]) >= 30
    assert "RENKEI_STATE_DIR=/var/lib/renkei" in svc["Environment"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_file_passes_systemd_analyze(tmp_path: Path) -> None:
    """``verify`` (no warning at all) and ``security`` (exposure <= 2.0) in a tiny root."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/renkei-gateway.service")
    exe = root / "opt/renkei/bin/renkei-gateway"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "SYSTEMD_LOG_COLOR": "0"}
    verify = run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            f"--root={root}",
            "/etc/systemd/system/renkei-gateway.service",
        ],
        env,
        timeout=60,
    )
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            f"--root={root}",
            "--no-pager",
            "renkei-gateway.service",
        ],
        env,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for renkei-gateway.service: ([0-9.]+)", security.stdout)
    if m is None:
        pytest.skip(f"systemd-analyze security --offline unsupported: {security.stderr[:200]}")
    assert float(m.group(1)) <= 2.0, security.stdout


# --------------------------------------------------------------------- installation


def test_install_tree_modes_and_unit(installed: Install) -> None:
    p, etc, state = installed.prefix, installed.etc, installed.state
    release = installed.current()
    assert re.fullmatch(r"releases/0\.\d+\.\d+\S*-[0-9a-f]{12}", release), release
    assert (p / release / ".complete").is_file()
    assert not (p / "previous").exists()
    assert os.readlink(p / "models").startswith("venv/lib/python3")
    assert (p / "models" / "cell-t2" / "manifest.json").is_file()
    for path, expected in {
        p: 0o755,
        p / "bin" / "renkei-gateway": 0o755,
        p / "uninstall.sh": 0o755,
        p / "README.md": 0o644,
        etc: 0o750,
        etc / "tls": 0o750,
        etc / "gateway.yaml": 0o640,
        etc / "gateway.yaml.example": 0o640,
        etc / "gateway.env": 0o640,
        etc / "tls" / "ca.crt": 0o640,
        state: 0o750,
        installed.root / "etc/systemd/system/renkei-gateway.service": 0o644,
    }.items():
        assert path.exists(), path
        assert mode(path) == expected, (path, oct(mode(path)))
    assert (installed.root / "etc/systemd/system/renkei-gateway.service").read_bytes() == (
        UNIT.read_bytes()
    )
    assert (etc / "gateway.env").read_text() == "RENKEI_MQTT_PASSWORD=Pi-test-password-9fK2xQ7\n"
    # Bytecode is compiled at install time: /opt is read-only for the service.
    assert list(
        (p / "venv" / "lib").glob("python3*/site-packages/renkei/edge/__pycache__/agent.*.pyc")
    )


def test_installed_venv_holds_the_edge_part_only(installed: Install) -> None:
    python = str(installed.prefix / "venv" / "bin" / "python")
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    ok = run(
        [
            python,
            "-c",
            "import renkei.edge.agent, renkei.edge.transport.publisher, renkei.edge.watchdog,"
            " onnxruntime",
        ],
        env,
    )
    assert ok.returncode == 0, ok.stderr
    # Every live source's driver and its protocol library import on the gateway.
    drivers = ", ".join(
        f"renkei.edge.sources.live.{kind}.driver"
        for kind in ("opcua", "modbus", "slmp", "mtconnect", "sparkplug")
    )
    ok = run([python, "-c", f"import {drivers}, serial"], env)
    assert ok.returncode == 0, ok.stderr
    # No cloud, training or dashboard dependencies on a gateway (httpx is the MTConnect
    # source's HTTP client since issue 12).
    for module in ("fastapi", "sqlalchemy", "psycopg", "sklearn", "uvicorn"):
        probe = run([python, "-c", f"import {module}"], env)
        assert probe.returncode != 0, f"{module} is installed on the gateway"
    help_ = run([str(installed.prefix / "bin" / "renkei-gateway"), "--help"], env)
    assert help_.returncode == 0 and "run" in help_.stdout, help_.stderr
    renkei = run([str(installed.prefix / "venv" / "bin" / "renkei"), "edge", "--help"], env)
    assert renkei.returncode == 0, renkei.stderr
    assert "run" in renkei.stdout


def test_install_again_changes_nothing(installed: Install) -> None:
    before = snapshot(installed.root)
    again = installed.install(
        "--config",
        str(installed.etc / "gateway.yaml"),
        "--env-file",
        str(installed.etc / "gateway.env"),
    )
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr
    after = snapshot(installed.root)
    assert after == before, {
        k: (before.get(k), after.get(k))
        for k in before.keys() | after.keys()
        if before.get(k) != after.get(k)
    }


def test_installed_agent_runs_and_notifies_systemd(installed: Install, tmp_path: Path) -> None:
    """The installed agent runs offline (no broker reachable), fills its outbox, stops."""
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(0.1)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "RENKEI_STATE_DIR": str(installed.state),
        "RENKEI_MQTT_PASSWORD": "Pi-test-password-9fK2xQ7",
        "NOTIFY_SOCKET": str(sock_path),
        "WATCHDOG_USEC": "4000000",
    }
    try:
        done = run(
            [
                str(installed.prefix / "bin" / "renkei-gateway"),
                "run",
                "--config",
                str(installed.etc / "gateway.yaml"),
                "--duration",
                "5",
                "--log-level",
                "WARNING",
            ],
            env,
            timeout=120,
        )
        received: list[str] = []
        while True:
            try:
                received += server.recv(4096).decode().splitlines()
            except TimeoutError:
                break
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert list(installed.state.glob("*/outbox.sqlite3")), "no outbox under the state dir"
    assert "READY=1" in received and "WATCHDOG=1" in received, received


def test_upgrade_rollback_and_pruning(tmp_path: Path, bundle: Path) -> None:
    inst = new_install(tmp_path / "a", bundle, "--no-compile")
    first = inst.current()

    def variant(n: int) -> Path:
        """The same bundle with different requirements bytes: a new release id."""
        other = tmp_path / f"bundle{n}"
        shutil.copytree(bundle, other)
        with open(other / "requirements.txt", "a") as fh:
            fh.write(f"# variant {n}\n")
        return other

    up = inst.install("--no-compile", "--no-verify", bundle=variant(2))
    assert up.returncode == 0, up.stderr
    second = inst.current()
    assert second != first and os.readlink(inst.prefix / "previous") == first
    assert (inst.etc / "gateway.yaml").is_file(), "an upgrade keeps the configuration"
    back = inst.install("--rollback", "--no-verify")
    assert back.returncode == 0, back.stderr
    assert inst.current() == first and os.readlink(inst.prefix / "previous") == second
    up3 = inst.install("--no-compile", "--no-verify", bundle=variant(3))
    assert up3.returncode == 0, up3.stderr
    releases = {f"releases/{p.name}" for p in (inst.prefix / "releases").iterdir()}
    assert releases == {inst.current(), first}, "only the current and the previous are kept"
    assert (inst.prefix / "models" / "cell-t2" / "manifest.json").is_file()


def test_bad_config_is_refused_and_nothing_changes(installed: Install, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway_id: gw-1\nfirm: f\nsite: s\nmachines: []\n")
    before = (installed.etc / "gateway.yaml").read_bytes()
    done = installed.install("--config", str(bad))
    assert done.returncode != 0 and "not a valid gateway config" in done.stderr
    assert (installed.etc / "gateway.yaml").read_bytes() == before


def test_uninstall_keeps_config_and_data_unless_purged(tmp_path: Path, bundle: Path) -> None:
    inst = new_install(tmp_path, bundle, "--no-compile")
    (inst.state / "gw-example-01").mkdir()
    (inst.state / "gw-example-01" / "outbox.sqlite3").write_bytes(b"")
    env = {"PATH": os.environ["PATH"]}
    uninstall = inst.prefix / "uninstall.sh"
    kept = run(["bash", str(uninstall), "--root", str(inst.root)], env)
    assert kept.returncode == 0, kept.stderr
    assert not inst.prefix.exists()
    assert not (inst.root / "etc/systemd/system/renkei-gateway.service").exists()
    assert (inst.etc / "gateway.yaml").is_file() and (inst.state / "gw-example-01").is_dir()
    assert "not yet" in kept.stderr  # warns about the outbox
    purged = run(["bash", str(PI / "uninstall.sh"), "--root", str(inst.root), "--purge"], env)
    assert purged.returncode == 0, purged.stderr
    assert not inst.etc.exists() and not inst.state.exists()


def test_install_as_non_root_without_root_dir_is_refused(tmp_path: Path, bundle: Path) -> None:
    env = uv_env(tmp_path)
    if os.geteuid() != 0:
        done = run(["bash", str(bundle / "install.sh")], env)
        assert done.returncode != 0 and "run as root" in done.stderr
    done = run(
        [
            "bash",
            str(bundle / "install.sh"),
            "--root",
            str(tmp_path / "r"),
            "--bundle",
            str(tmp_path),
        ],
        env,
    )
    assert done.returncode != 0 and "renkei-*.whl" in done.stderr


def locked_for_this_python(bundle: Path, python: str) -> set[str]:
    """``name==version`` of the bundle's requirements whose markers hold for ``python``."""
    code = (
        "import sys\n"
        "from packaging.requirements import Requirement\n"
        "from packaging.utils import canonicalize_name\n"
        "for line in open(sys.argv[1]):\n"
        "    line = line.strip()\n"
        "    if not line or line.startswith('#'):\n"
        "        continue\n"
        "    r = Requirement(line)\n"
        "    if r.marker is None or r.marker.evaluate():\n"
        "        print(f'{canonicalize_name(r.name)}=={next(iter(r.specifier)).version}')\n"
    )
    # packaging is a locked core dependency: the installed release's interpreter has it.
    done = run([python, "-c", code, str(bundle / "requirements.txt")], {"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_offline_install_with_pip_takes_exactly_the_bundle_wheels(
    tmp_path: Path, bundle: Path
) -> None:
    """The Pi's default installer (no uv there): pip, offline, from wheels/ only."""
    inst = new_install(tmp_path, bundle, "--no-compile", installer="pip")
    python = str(inst.prefix / "venv" / "bin" / "python")
    freeze = run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": os.devnull},
    )
    assert freeze.returncode == 0, freeze.stderr
    installed = {
        line.split("==")[0].lower().replace("_", "-") + "==" + line.split("==")[1]
        for line in freeze.stdout.split()
    }
    installed -= {p for p in installed if p.startswith(("pip==", "setuptools=="))}
    wheel = next(bundle.glob("renkei-*.whl")).name.split("-")[1]
    expected = locked_for_this_python(bundle, python) | {f"renkei=={wheel}"}
    assert installed == expected, installed ^ expected
    assert len(installed) == len(list((bundle / "wheels").glob("*.whl"))) + 1


def test_the_wheel_adds_exactly_one_import_name(bundle: Path) -> None:
    """Installing the distribution adds one top-level import name, ``renkei``: the folders
    edge/, cloud/, models/, dashboards/ ship inside it (with their data files), and no
    test, benchmark or harness code ships at all."""
    import zipfile

    wheel = next(bundle.glob("renkei-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"renkei"}, tops
    for expected in (
        "renkei/core/wire.py",
        "renkei/edge/agent.py",
        "renkei/edge/transport/outbox.py",
        "renkei/cloud/ingest/worker.py",
        "renkei/cloud/api/web/static/index.html",
        "renkei/cloud/registry/migrations/env.py",
        "renkei/models/artifacts/skab-pump-t2/model.onnx",
        "renkei/dashboards/generated/renkei-capacity.json",
    ):
        assert expected in names, expected
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("renkei/tests/", "renkei/bench/"))]


def test_offline_install_without_wheels_is_refused(tmp_path: Path, bundle: Path) -> None:
    """``--offline`` with a bundle built without ``--wheels``: refused before any change."""
    bare = tmp_path / "bare"
    shutil.copytree(bundle, bare, ignore=shutil.ignore_patterns("wheels"))
    root = tmp_path / "root"
    done = Install(root=root, env=uv_env(tmp_path), bundle=bare).install()
    assert done.returncode != 0
    assert f"--offline needs the dependencies' wheels in {bare}/wheels" in done.stderr
    assert "build-bundle.sh --wheels" in done.stderr
    assert not root.exists()


# --------------------------------------------------------------------- renkei.edge.watchdog


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "n.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    try:
        yield server, str(path)
    finally:
        server.close()


def test_notifier_sends_ready_status_watchdog_and_stopping(
    notify_socket: tuple[socket.socket, str],
) -> None:
    server, path = notify_socket
    now = [100.0]
    n = Notifier(path, watchdog_interval_s=8.0, clock=lambda: now[0])
    assert n.enabled
    assert n.ready("connecting")
    assert server.recv(1024) == b"READY=1\nSTATUS=connecting"
    assert not n.keepalive(), "a keep-alive right after READY is not needed"
    now[0] += 2.1  # a quarter of the interval
    assert n.keepalive()
    assert server.recv(1024) == b"WATCHDOG=1"
    now[0] += 1.0
    assert not n.keepalive()
    assert n.status("ok") and server.recv(1024) == b"STATUS=ok"
    assert n.stopping() and server.recv(1024) == b"STOPPING=1"
    n.close()


def test_notifier_abstract_socket_and_environment() -> None:
    name = f"renkei-test-{os.getpid()}-{time.monotonic_ns()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
        assert n.watchdog_interval_s == 30.0
        assert n.keepalive() and server.recv(64) == b"WATCHDOG=1"
    finally:
        server.close()
    # The watchdog belongs to another process (WATCHDOG_PID): no keep-alives from here.
    other = Notifier.from_env(
        {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    )
    assert other.enabled and other.watchdog_interval_s is None and not other.keepalive()


def test_notifier_outside_systemd_and_with_a_dead_socket(tmp_path: Path) -> None:
    off = Notifier.from_env({})
    assert not off.enabled
    assert not off.ready() and not off.keepalive() and not off.stopping()
    dead = Notifier(str(tmp_path / "missing.sock"), watchdog_interval_s=1.0)
    assert not dead.ready()  # logged once, never raised
    assert not dead.keepalive()
