"""Real nginx (the shipped reverse-proxy config) and a real ``renkei cloud api`` (uvicorn).

:class:`Nginx` renders ``deploy/nginx/templates/renkei-api.conf.template`` the way the
official nginx image does (``${NGINX_*}`` from ``deploy/nginx/nginx.env``, overrides on
top; nginx's own ``$variables`` untouched) and runs the Debian package's binary from a
temp dir: ``nginx -p DIR -c DIR/nginx.conf -g 'daemon off; pid ...; error_log stderr;'``.
:class:`ApiServer` runs ``python -m renkei.cli cloud api`` with ``RENKEI_API_*``
variables. Both use the server helpers of :mod:`harness.services` (free ports, start/stop).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from harness.services import REPO, ServerProcess, ServiceError, free_port, wait_port

NGINX_DIR = REPO / "deploy" / "nginx"
NGINX_TEMPLATE = NGINX_DIR / "templates" / "renkei-api.conf.template"
NGINX_ENV = NGINX_DIR / "nginx.env"
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def nginx_defaults() -> dict[str, str]:
    """``NGINX_*`` values of ``deploy/nginx/nginx.env``."""
    out: dict[str, str] = {}
    for line in NGINX_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def render_template(overrides: Mapping[str, str] | None = None) -> str:
    """The shipped template with ``${NAME}`` replaced (defaults + ``overrides``).

    Raises:
        ServiceError: a placeholder without a value, or an override the template lacks.
    """
    values = nginx_defaults() | dict(overrides or {})
    text = NGINX_TEMPLATE.read_text()
    used = set(_PLACEHOLDER.findall(text))
    unknown = sorted(set(overrides or {}) - used)
    if unknown:
        raise ServiceError(f"overrides not in the template: {unknown}")
    missing = sorted(used - set(values))
    if missing:
        raise ServiceError(f"template placeholders without a value: {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


class Nginx(ServerProcess):
    """nginx from the Debian package with the rendered shipped config, on loopback."""

    def __init__(self, *, workdir: Path, upstream_port: int, **overrides: str) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        binary = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
        self.binary = binary or shutil.which("nginx") or ""
        if not self.binary:
            raise ServiceError("nginx not found: install the Debian package nginx")
        values = {
            "NGINX_LISTEN_PORT": f"127.0.0.1:{self.port}",
            "NGINX_API_UPSTREAM": f"127.0.0.1:{upstream_port}",
        } | overrides
        (self.workdir / "renkei-api.conf").write_text(render_template(values))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers write the temp dir
        temp = " ".join(
            f"{kind}_temp_path {self.workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf_path = self.workdir / "nginx.conf"
        self.conf_path.write_text(
            f"{user}worker_processes 1;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log {self.workdir / 'access.log'};\n  {temp}\n"
            f"  include {self.workdir / 'renkei-api.conf'};\n}}\n"
        )

    def _argv(self) -> list[str]:
        return [
            self.binary,
            "-p",
            str(self.workdir),
            "-c",
            str(self.conf_path),
            "-g",
            f"daemon off; pid {self.workdir / 'nginx.pid'}; error_log stderr;",
        ]

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 10.0, self.proc, self.log_path)


class ApiServer(ServerProcess):
    """``renkei cloud api`` (uvicorn) on a free loopback port, configured by ``env``."""

    def __init__(self, *, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = {
            "RENKEI_API_DATABASE_URL": f"sqlite:///{workdir / 'registry.sqlite3'}",
            "RENKEI_LOG_LEVEL": "INFO",
        } | dict(env)
        self.key = ""
        """An API key tests may store here (issued after start)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        variables = [f"{k}={v}" for k, v in self.env.items()]
        return [
            "/usr/bin/env",
            *variables,
            sys.executable,
            "-m",
            "renkei.cli",
            "cloud",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 60.0, self.proc, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
