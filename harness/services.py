"""Real Mosquitto and InfluxDB servers for tests and benchmarks.

Each server runs from the Debian package's binary (``/usr/sbin/mosquitto``,
``/usr/bin/influxd``) on a free loopback port with its own temporary directory, and can be
stopped (SIGTERM), killed (SIGKILL) and restarted on the same port and data directory, so
tests can simulate outages. Nothing here is a fake.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto" / "renkei.conf"


class ServiceError(RuntimeError):
    """A test service could not be found or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``127.0.0.1:port`` accepts connections.

    Raises:
        ServiceError: ``proc`` exited first, or the port stayed closed for ``timeout_s`` s
            (the message holds the tail of ``log``).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"process exited with {proc.returncode}; log:\n{log_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise ServiceError(f"port {port} not open after {timeout_s} s; log:\n{log_tail(log)}")


def log_tail(path: Path, n: int = 30) -> str:
    """The last ``n`` lines of the log at ``path`` (``"<no log>"`` if unreadable)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _binary(name: str, candidates: list[str]) -> str:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError(
        f"{name} not found (looked in {candidates} and PATH); install the Debian package "
        f"({'mosquitto' if name == 'mosquitto' else 'influxdb'}) or run the README's test command"
    )


class ServerProcess:
    """A server process with stop/kill/start on a fixed port and directory."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> None:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def start(self) -> None:
        """Start the server (again) and wait until it serves."""
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            self._argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._ready()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop cleanly (SIGTERM) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """Kill hard (SIGKILL), as a crash or power loss would."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill()
        self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class Mosquitto(ServerProcess):
    """A real Mosquitto broker using the repo's ``deploy/mosquitto/renkei.conf``."""

    def __init__(self, *, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.binary = _binary("mosquitto", ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"])
        conf = MOSQUITTO_CONF.read_text()
        conf += f"\nlistener {self.port} 127.0.0.1\npersistence_location {self.workdir}/\n"
        if os.geteuid() == 0 and "\nuser " not in f"\n{extra_conf}":
            # Started as root, Mosquitto switches to user "mosquitto", which cannot write
            # its persistence file into the test's private temp dir: sessions and queued
            # messages would silently not survive a restart.
            conf += "user root\n"
        conf += extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"
        self.conf_path.write_text(conf)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path)]

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 10.0, self.proc, self.log_path)


def dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic-security plugin (Debian's ``mosquitto`` package).

    Raises:
        ServiceError: not installed.
    """
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    found += sorted(Path("/usr/lib").glob("mosquitto_dynamic_security.so"))
    if not found:
        raise ServiceError("mosquitto_dynamic_security.so not found; install Debian's mosquitto")
    return str(found[0])


class DynsecMosquitto(Mosquitto):
    """A real Mosquitto whose users, roles and ACLs are its dynamic-security plugin's.

    The plugin's file starts as ``mosquitto_ctrl dynsec init`` writes it (one admin client
    with the admin role), with every default access denied except unsubscribe (as
    Renkei's ACL file: nothing but what a role allows). Anonymous clients are refused and
    the client id is the user name (as compose.conf).
    """

    def __init__(
        self, *, workdir: Path, admin_user: str, admin_password: str, port: int | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dynsec_file = workdir / "dynamic-security.json"
        ctrl = _binary("mosquitto_ctrl", ["/usr/bin/mosquitto_ctrl"])
        subprocess.run(
            [ctrl, "dynsec", "init", str(self.dynsec_file), admin_user, admin_password],
            check=True,
            capture_output=True,
            timeout=30,
        )
        doc = orjson.loads(self.dynsec_file.read_bytes())
        doc["defaultACLAccess"] = {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        }
        self.dynsec_file.write_bytes(orjson.dumps(doc))
        super().__init__(
            workdir=workdir,
            port=port,
            extra_conf=(
                "use_username_as_clientid true\n"
                "allow_anonymous false\n"
                f"plugin {dynsec_plugin()}\n"
                f"plugin_opt_config_file {self.dynsec_file}\n"
            ),
        )


class InfluxDB(ServerProcess):
    """A real InfluxDB 1.x (Debian ``influxdb``) serving the v1 HTTP API on loopback."""

    def __init__(self, *, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.binary = _binary("influxd", ["/usr/bin/influxd"])
        self.conf_path = self.workdir / "influxdb.conf"
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.workdir}/meta"
  logging-enabled = false
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  wal-fsync-delay = "0s"
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[logging]
  level = "warn"
"""
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        return [self.binary, "-config", str(self.conf_path)]

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 30.0, self.proc, self.log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                    if r.status == 204:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise ServiceError(f"InfluxDB /ping not ready; log:\n{log_tail(self.log_path)}")

    # Small helpers for assertions (plain HTTP, independent of the code under test).
    def query(self, q: str, *, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL and return the ``series`` list of the first statement."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        url = f"{self.url}/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as r:
            body = orjson.loads(r.read())
        result = body["results"][0]
        if "error" in result:
            raise ServiceError(f"InfluxQL error for {q!r}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def create_database(self, db: str) -> None:
        req = urllib.request.Request(
            f"{self.url}/query",
            data=urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30):
            pass

    def count_points(self, db: str, measurement: str, field: str) -> int:
        """Number of points in ``measurement`` with ``field`` set (exact, all time)."""
        series = self.query(f'SELECT count("{field}") FROM "{measurement}"', db=db)
        if not series:
            return 0
        return int(series[0]["values"][0][1])
