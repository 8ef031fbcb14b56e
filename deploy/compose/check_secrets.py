"""Refuse weak or default secrets before docker-compose.yml starts anything.

Run by the one-shot ``secrets-check`` service (``python /renkei/check_secrets.py``), on
which every other service depends with ``condition: service_completed_successfully``: a
weak password stops the whole stack before a broker, database or dashboard is reachable
with it. Standard library only; also runnable by hand::

    set -a; . ./.env; set +a; python3 deploy/compose/check_secrets.py

Every environment variable whose name ends in ``_PASSWORD`` or ``_TOKEN`` is a secret.
A secret is refused when it

- is empty or shorter than 16 characters (tokens: 32);
- is a well-known default or contains one (``changeme``, ``password``, ``admin`` ...);
- has fewer than 8 different characters (``aaaaaaaaaaaaaaaa``, ``abababab...``);
- is used for two different secrets (one leak must not open two doors).

``POSTGRES_PASSWORD`` must also consist of URL-safe characters (``A-Z a-z 0-9 . _ ~ -``):
it is written into the API's database URL unescaped. That rule holds even in demo mode.

With ``RENKEI_DEMO_MODE=true`` (a local demonstration, never a deployment) weak secrets
only print a warning. Exit status: 0 accepted, 1 refused, 2 no secrets found at all.
Values are never printed, only variable names.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

MIN_LENGTH = 16
MIN_TOKEN_LENGTH = 32
MIN_DISTINCT = 8

#: Defaults and placeholders refused anywhere inside a secret (case-insensitive).
WEAK_WORDS: tuple[str, ...] = (
    "changeme",
    "change-me",
    "change_me",
    "password",
    "passw0rd",
    "secret",
    "admin",
    "default",
    "example",
    "letmein",
    "qwerty",
    "123456",
    "mosquitto",
    "influxdb",
    "grafana",
    "postgres",
    "renkei",
    "demo",
    "test",
)

URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
URL_SAFE_SECRETS = ("POSTGRES_PASSWORD",)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable holds a secret checked here."""
    return name.endswith(("_PASSWORD", "_TOKEN"))


def problems(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Check the secrets in ``env``.

    Returns:
        ``(weak, fatal)``: messages about weak secrets (refused unless in demo mode) and
        about secrets that can never work (refused in every mode). Messages name variables,
        never values.
    """
    weak: list[str] = []
    fatal: list[str] = []
    seen: dict[str, str] = {}
    for name in sorted(n for n in env if is_secret_name(n)):
        value = env[name]
        minimum = MIN_TOKEN_LENGTH if name.endswith("_TOKEN") else MIN_LENGTH
        lowered = value.lower()
        if not value:
            fatal.append(f"{name} is empty")
            continue
        if name in URL_SAFE_SECRETS and not URL_SAFE.match(value):
            fatal.append(f"{name} must use only A-Z a-z 0-9 . _ ~ - (it goes into a URL)")
        if len(value) < minimum:
            weak.append(f"{name} is shorter than {minimum} characters")
        found = [w for w in WEAK_WORDS if w in lowered]
        if found:
            weak.append(f"{name} contains the well-known word {found[0]!r}")
        if len(set(value)) < MIN_DISTINCT:
            weak.append(f"{name} has fewer than {MIN_DISTINCT} different characters")
        if value in seen:
            weak.append(f"{name} has the same value as {seen[value]}")
        else:
            seen[value] = name
    return weak, fatal


def demo_mode(env: Mapping[str, str]) -> bool:
    """Whether ``RENKEI_DEMO_MODE`` is set to a true value."""
    return env.get("RENKEI_DEMO_MODE", "").strip().lower() in ("1", "true", "yes", "on")


def main(env: Mapping[str, str] | None = None) -> int:
    """Check the environment's secrets; print the verdict to stderr; return the exit code."""
    env = os.environ if env is None else env
    names = [n for n in env if is_secret_name(n)]
    if not names:
        print("secrets-check: no *_PASSWORD or *_TOKEN variables to check", file=sys.stderr)
        return 2
    weak, fatal = problems(env)
    demo = demo_mode(env)
    for msg in fatal:
        print(f"secrets-check: REFUSED: {msg}", file=sys.stderr)
    for msg in weak:
        verdict = "WARNING (demo mode)" if demo else "REFUSED"
        print(f"secrets-check: {verdict}: {msg}", file=sys.stderr)
    if fatal or (weak and not demo):
        print(
            "secrets-check: fix .env (deploy/compose/make-env.sh writes strong random "
            "values); RENKEI_DEMO_MODE=true accepts weak ones for a local demonstration only",
            file=sys.stderr,
        )
        return 1
    print(f"secrets-check: {len(names)} secrets accepted", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
