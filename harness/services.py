"""Real Mosquitto, InfluxDB and PostgreSQL servers for tests and benchmarks.

Each server runs from the Debian package's binary (``/usr/sbin/mosquitto``,
``/usr/bin/influxd``, ``/usr/lib/postgresql/<version>/bin/postgres``) on a free loopback
port with its own temporary directory, and can be stopped (SIGTERM; PostgreSQL: SIGINT,
its fast shutdown), killed (SIGKILL) and restarted on the same port and data directory, so
tests can simulate outages. Nothing here is a fake.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
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


def _binary(name: str, candidates: list[str], package: str | None = None) -> str:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return found
    package = package or ("mosquitto" if name == "mosquitto" else "influxdb")
    raise ServiceError(
        f"{name} not found (looked in {candidates} and PATH); install the Debian package "
        f"({package}) or run the README's test command"
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
    """A real InfluxDB 1.x (Debian ``influxdb``) serving the v1 HTTP API on loopback.

    ``auth=True``: users and privileges are enforced (create the first admin user with
    ``CREATE USER ... WITH ALL PRIVILEGES``; the helpers below then need not work).
    """

    def __init__(self, *, workdir: Path, port: int | None = None, auth: bool = False) -> None:
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
  auth-enabled = {"true" if auth else "false"}
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


def _postgres_bin(name: str) -> str:
    """``name`` (``initdb``, ``postgres``) of the newest Debian PostgreSQL, else from PATH."""
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    return _binary(name, [str(v / name) for v in versions], package="postgresql")


def _server_account() -> tuple[int, int] | None:
    """``(uid, gid)`` to run PostgreSQL as when we are root (it refuses to run as root):
    Debian's ``postgres`` account, else ``nobody``; ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise ServiceError("running as root, but neither user 'postgres' nor 'nobody' exists")


class PostgreSQL(ServerProcess):
    """A real PostgreSQL (Debian ``postgresql``) on loopback TCP, trust authentication.

    ``initdb`` makes a fresh cluster in a private data directory; the superuser is
    ``postgres`` without password (loopback only). When the tests run as root (CI), the
    cluster belongs to and the server runs as the ``postgres`` account (or ``nobody``),
    and the data directory lives outside ``workdir`` (pytest's temp dirs are private to
    root): :meth:`remove` deletes it. ``workdir`` holds the server log.
    """

    SUPERUSER = "postgres"

    def __init__(self, *, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.binary = _postgres_bin("postgres")
        self._account = _server_account()
        if self._account is None:
            self.datadir = self.workdir / "data"
            self._own_dir: Path | None = None
        else:
            # the server's account must reach it: not below a root-only TMPDIR
            base = Path(tempfile.gettempdir())
            if not base.stat().st_mode & 0o001:
                base = Path("/tmp")  # world-traversable; the dir itself is 0700
            self._own_dir = Path(tempfile.mkdtemp(prefix="renkei-pg-", dir=base))
            os.chown(self._own_dir, *self._account)
            self.datadir = self._own_dir / "data"
        self._initdb()

    def _as_account(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        uid, gid = self._account
        return {"user": uid, "group": gid, "extra_groups": [], "cwd": self.datadir.parent}

    def _initdb(self) -> None:
        argv = [
            _postgres_bin("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        with open(self.log_path, "ab") as log:
            done = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                **self._as_account(),
            )
        if done.returncode != 0:
            raise ServiceError(
                f"initdb failed ({done.returncode}); log:\n{log_tail(self.log_path)}"
            )

    def dsn(self, database: str = "postgres") -> str:
        """libpq connection string of ``database`` (psycopg)."""
        return f"host=127.0.0.1 port={self.port} user={self.SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` (driver psycopg 3)."""
        return f"postgresql+psycopg://{self.SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _argv(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.datadir),
            "max_connections": "300",
            "shared_buffers": "32MB",
            # a test server: durability is not needed, speed is (every test makes a database)
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_min_messages": "warning",
        }
        argv = [self.binary, "-D", str(self.datadir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def start(self) -> None:
        """Start the server (again) as its account and wait until it accepts queries."""
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            self._argv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_account(),
        )
        log.close()
        self._ready()

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 30.0, self.proc, self.log_path)
        import psycopg

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"postgres exited; log:\n{log_tail(self.log_path)}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:  # "the database system is starting up"
                time.sleep(0.05)
        raise ServiceError(f"PostgreSQL not ready; log:\n{log_tail(self.log_path)}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Fast shutdown (SIGINT: sessions are ended, not waited for) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill the postmaster and its backends hard (SIGKILL to the process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def remove(self) -> None:
        """Stop and delete the data directory (call once, at the end)."""
        self.stop()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement in autocommit (``CREATE DATABASE`` and the like)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """``CREATE DATABASE name`` (a copy of ``template`` if given; it must be idle)."""
        tmpl = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{tmpl}')

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE`` even while connections are open (they are terminated)."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
