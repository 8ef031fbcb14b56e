"""docker-compose.yml against the Compose Specification, and the files it runs.

There is no Docker engine here, so the stack is checked the way compose itself would read
it: YAML (with merge keys) -> variable interpolation from .env -> the official Compose
Specification JSON schema (tests/data/compose-spec.json). On top of the schema, every file,
config, secret, volume and dependency a service refers to must exist, the MQTT users of
compose, the ACL and the gateway configs must agree, and no secret may have a default.
The helper scripts (secrets check, .env and certificate generators, InfluxDB init) run
here for real. The broker configuration itself runs in
tests/integration/test_broker_security.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.broker_acl import ROLLOUT_USER_SUFFIX
from renkei.edge.config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SCHEMA = REPO / "tests" / "data" / "compose-spec.json"
CHECK_SECRETS = REPO / "deploy" / "compose" / "check_secrets.py"
MAKE_ENV = REPO / "deploy" / "compose" / "make-env.sh"
MAKE_CERTS = REPO / "deploy" / "tls" / "make-dev-certs.sh"
INFLUX_INIT = REPO / "deploy" / "influxdb" / "init-v1.sh"
ACL = REPO / "deploy" / "mosquitto" / "acl"
#: What make-dev-certs.sh writes into RENKEI_SECRETS_DIR (not in the repository).
GENERATED_TLS_FILES = {"ca.crt", "server.crt", "server.key"}

SERVICES = {
    "secrets-check",
    "mosquitto",
    "influxdb",
    "postgres",
    "grafana",
    "init",
    "ingest-1",
    "ingest-2",
    "api",
    "nginx",
    "watch",
    "rollout",
    "gateway-expiry",
    "capacity",
    "oee-sync",
    "gateway-sim-01",
    "gateway-sim-02",
    "gateway-sim-03",
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$\$|\$([A-Za-z_]\w*)")


# --------------------------------------------------------------------- compose reading


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty (compose stops there)."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation, applied to every string value of a document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(4):
            raise AssertionError(f"unbraced ${m.group(4)} in {value!r}: write ${{{m.group(4)}}}")
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        current = env.get(name)
        empty = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and empty:
            raise InterpolationError(f"{name}: {arg}")
        if op in (":-", "-") and empty:
            return arg
        if op in (":+", "+"):
            return "" if empty else arg
        return current or ""

    return _VAR.sub(sub, value)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a .env file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, val = line.partition("=")
        assert sep, f"{path}: not KEY=value: {line!r}"
        env[key] = val
    return env


def compose_raw() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def filled_env() -> dict[str, str]:
    """.env.example with a distinct strong dummy for every empty value."""
    env = read_env_file(ENV_EXAMPLE)
    return {k: (v or dummy_secret(k)) for k, v in env.items()}


def dummy_secret(name: str) -> str:
    """A strong, distinct stand-in value for the variable ``name`` (40 characters)."""
    return "Dq" + hashlib.sha256(name.encode()).hexdigest()[:38]


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = interpolate(compose_raw(), filled_env() if env is None else env)
    return doc


def variables_in(text: str) -> dict[str, set[str]]:
    """Variables referenced in ``text`` with the operators used on them."""
    out: dict[str, set[str]] = {}
    for m in _VAR.finditer(text):
        if m.group(1):
            out.setdefault(m.group(1), set()).add(m.group(2) or "")
    return out


def svc_list(value: Any) -> list[str]:
    """Names in a service's configs/secrets list (short or long syntax)."""
    return [v if isinstance(v, str) else v["source"] for v in value or []]


def acl_users() -> dict[str, list[tuple[str, str]]]:
    """The ACL's ``user`` blocks: user -> [(access, topic)]."""
    users: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for line in ACL.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            current = words[1]
            users[current] = []
        else:
            assert words[0] == "topic" and current is not None, line
            users[current].append((words[1], words[2]))
    return users


# --------------------------------------------------------------------- the compose file


def test_compose_matches_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    for name, doc in (("as written", compose_raw()), ("interpolated", compose())):
        errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, f"{name}: " + "\n".join(errors)
    # The schema is really applied: a misspelt key is caught.
    broken = compose()
    broken["services"]["api"]["enviroment"] = {}
    assert not validator.is_valid(broken)


def test_compose_has_the_production_services() -> None:
    doc = compose()
    assert set(doc["services"]) == SERVICES
    assert doc["services"]["api"]["command"] == ["renkei", "cloud", "api"]
    # gateways enrol through the API (dynamic security); expired credentials are disabled
    api_env = doc["services"]["api"]["environment"]
    assert api_env["RENKEI_API_DYNSEC_BROKER"] == "mqtts://mosquitto:8883"
    assert doc["services"]["gateway-expiry"]["command"][-4:] == [
        "gateways",
        "expire",
        "--every",
        "60",
    ]
    # First start: the first firm, site and admin key from .env, once, before the api.
    init = doc["services"]["init"]
    assert init["command"] == ["renkei", "cloud", "init", "--if-empty"]
    assert init["restart"] == "no"
    assert doc["services"]["api"]["depends_on"]["init"] == {
        "condition": "service_completed_successfully"
    }
    assert init["environment"]["RENKEI_API_DATABASE_URL"] == url_of(doc, "api")
    for name in (
        "FIRM_ID",
        "FIRM_NAME",
        "REGION",
        "SITE_NAME",
        "LATITUDE",
        "LONGITUDE",
        "ADMIN_TOKEN",
    ):
        assert init["environment"][f"RENKEI_INIT_{name}"] == filled_env()[f"RENKEI_INIT_{name}"]
    assert doc["services"]["watch"]["command"][:3] == ["renkei", "cloud", "watch"]
    for i in (1, 2):
        assert doc["services"][f"ingest-{i}"]["command"] == ["renkei", "cloud", "ingest"]
    # The two ingest workers share one group with distinct, stable client ids.
    env1 = doc["services"]["ingest-1"]["environment"]
    env2 = doc["services"]["ingest-2"]["environment"]
    assert env1["RENKEI_SHARE_GROUP"] == env2["RENKEI_SHARE_GROUP"]
    assert env1["RENKEI_CLIENT_ID"] != env2["RENKEI_CLIENT_ID"]
    # The producers of the dashboards' model_deploy and capacity measurements.
    assert doc["services"]["rollout"]["command"] == ["python", "-m", "renkei.cloud.rollout"]
    assert doc["services"]["capacity"]["command"][:3] == ["renkei", "cloud", "capacity-publish"]
    assert "--every" in doc["services"]["capacity"]["command"]
    # Operator counts reach oee through the writer (the api's InfluxDB user only reads).
    assert doc["services"]["oee-sync"]["command"][:3] == ["renkei", "cloud", "oee-sync"]
    assert "--every" in doc["services"]["oee-sync"]["command"]
    # The registry is PostgreSQL through psycopg, which the image installs (cloud extra).
    url = doc["services"]["api"]["environment"]["RENKEI_API_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and url.endswith("@postgres:5432/renkei")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    cloud_extra = pyproject["project"]["optional-dependencies"]["cloud"]
    assert any(d.startswith("psycopg[binary]") for d in cloud_extra)
    assert "--extra cloud" in (REPO / "Dockerfile").read_text()


def url_of(doc: Mapping[str, Any], service: str) -> str:
    """The registry URL a service of the interpolated compose file reads."""
    url: str = doc["services"][service]["environment"]["RENKEI_API_DATABASE_URL"]
    return url


def test_every_referenced_file_exists() -> None:
    doc = compose()
    secrets_dir = Path(filled_env()["RENKEI_SECRETS_DIR"])
    missing: list[str] = []
    for name, cfg in doc["configs"].items():
        if not (REPO / cfg["file"]).is_file():
            missing.append(f"config {name}: {cfg['file']}")
    for name, cfg in doc["secrets"].items():
        if "file" in cfg:
            path = Path(cfg["file"])
            # TLS files are generated per deployment (make-dev-certs.sh) into the secrets dir
            assert path.parent == secrets_dir and path.name in GENERATED_TLS_FILES, name
        else:
            assert set(cfg) == {"environment"}, name
    for svc_name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if source.startswith("."):
                if not (REPO / source).exists():
                    missing.append(f"{svc_name}: bind mount {source}")
            else:
                assert source in doc["volumes"], f"{svc_name}: undeclared volume {source}"
        for cfg_name in svc_list(svc.get("configs")):
            assert cfg_name in doc["configs"], f"{svc_name}: undeclared config {cfg_name}"
        for sec_name in svc_list(svc.get("secrets")):
            assert sec_name in doc["secrets"], f"{svc_name}: undeclared secret {sec_name}"
        for dep in svc.get("depends_on", {}):
            assert dep in doc["services"], f"{svc_name}: depends on unknown {dep}"
        if svc.get("build") == ".":
            assert (REPO / "Dockerfile").is_file()
    assert not missing, missing
    # Scripts run by the images must stay executable / runnable.
    assert os.access(INFLUX_INIT, os.X_OK), "run-parts skips a non-executable init script"


def test_dependencies_have_no_cycle_and_all_wait_for_the_secrets_check() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        if name == "secrets-check":
            assert "depends_on" not in svc
            continue
        dep = svc["depends_on"]["secrets-check"]
        assert dep == {"condition": "service_completed_successfully"}, name
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in services[name].get("depends_on", {}):
            visit(dep, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_no_secret_has_a_default_and_every_variable_is_documented() -> None:
    text = COMPOSE.read_text()
    used = variables_in(text)
    documented = read_env_file(ENV_EXAMPLE)
    assert set(used) <= set(documented), f"undocumented: {set(used) - set(documented)}"
    for name, ops in used.items():
        if name.endswith(("_PASSWORD", "_TOKEN", "_USER")):
            assert ops == {":?"}, f"{name} must be required (${{{name}:?...}}), got {ops}"
    # Every secret of .env.example is empty there, so an unedited copy cannot start.
    for name, value in documented.items():
        if name.endswith(("_PASSWORD", "_TOKEN")):
            assert value == "", f".env.example must not suggest a value for {name}"
    with pytest.raises(InterpolationError, match="INFLUXDB_ADMIN_PASSWORD|_PASSWORD|_TOKEN"):
        compose(read_env_file(ENV_EXAMPLE))
    # Compose secrets sourced from the environment name documented variables.
    for name, cfg in compose()["secrets"].items():
        if "environment" in cfg:
            assert cfg["environment"] in documented, name


def test_secrets_check_sees_every_secret() -> None:
    env = compose()["services"]["secrets-check"]["environment"]
    secrets = {k for k in read_env_file(ENV_EXAMPLE) if k.endswith(("_PASSWORD", "_TOKEN"))}
    assert secrets <= set(env), f"not checked: {secrets - set(env)}"
    assert compose()["configs"]["check-secrets"]["file"] == "./deploy/compose/check_secrets.py"


def test_mqtt_users_agree_across_compose_acl_and_gateway_configs(tmp_path: Path) -> None:
    raw_text = COMPOSE.read_text()
    doc = compose_raw()
    users = acl_users()
    broker_users = {
        s.removeprefix("mqtt-user-")
        for s in svc_list(doc["services"]["mosquitto"]["secrets"])
        if s.startswith("mqtt-user-")
    }
    assert broker_users == set(users), "password users and ACL users differ"
    declared = {
        k.removeprefix("mqtt-user-"): v["environment"]
        for k, v in doc["secrets"].items()
        if k.startswith("mqtt-user-")
    }
    assert set(declared) == broker_users
    # One password per user, except a gateway's rollout user: it logs in with the password
    # of its gateway's config (mqtt.password_env), on the same device.
    gateway_of = {u: u.removesuffix(ROLLOUT_USER_SUFFIX) for u in declared}
    gateway_of = {u: g for u, g in gateway_of.items() if g != u and g in declared}
    assert len(gateway_of) == 3
    owners = {gateway_of.get(u, u) for u in declared}
    assert len(owners) == len(set(declared.values())), "two MQTT users share a password"
    for user, gateway in gateway_of.items():
        assert declared[user] == declared[gateway], user
    assert "mqtt-tls-ca" in doc["services"]["mosquitto"]["secrets"]

    # Each cloud service logs in as an ACL user of its own (the broker makes the client id
    # the user name), with that user's password variable.
    mqtt_users: list[str] = []
    for name, svc in doc["services"].items():
        env = svc.get("environment") or {}
        user = env.get("RENKEI_MQTT_USERNAME")
        if user is None:
            continue
        mqtt_users.append(user)
        assert user in users, f"{name}: unknown MQTT user {user}"
        client_ids = [v for k, v in env.items() if k.endswith("CLIENT_ID")]
        assert client_ids == [user], f"{name}: client id {client_ids} is not its user {user}"
        assert env["RENKEI_MQTT_PASSWORD"] == f"${{{declared[user]}:?set in .env}}", name
        assert env["RENKEI_BROKER"].startswith("mqtts://mosquitto:8883"), name
        assert "mqtt-tls-ca" in svc["secrets"], name

    # Each simulated gateway: config user = gateway id = ACL user, granted its own prefix.
    gateways = [n for n in doc["services"] if n.startswith("gateway-sim-")]
    assert len(gateways) == 3
    firms = set()
    for name in gateways:
        svc = doc["services"][name]
        (cfg_name,) = svc_list(svc["configs"])
        path = REPO / doc["configs"][cfg_name]["file"]
        text = path.read_text().replace("/app/models", str(REPO / "models"))
        (tmp_path / path.name).write_text(text)
        cfg = load_config(tmp_path / path.name)
        assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.port == 8883
        assert cfg.mqtt.tls_ca_file == Path("/run/secrets/mqtt-tls-ca")
        assert cfg.mqtt.username == cfg.gateway_id and cfg.mqtt.client_id is None
        assert cfg.mqtt.password_env in svc["environment"]
        assert svc["environment"][cfg.mqtt.password_env] == (
            f"${{{declared[cfg.gateway_id]}:?set in .env}}"
        )
        mqtt_users.append(cfg.gateway_id)
        # Exactly its machines' topics and its own _gw/ topics (the ACL generator's test
        # checks the whole file); its rollout user has its rollout topics only.
        site = f"renkei/v1/{cfg.firm}/{cfg.site}"
        assert {t for a, t in users[cfg.gateway_id] if a == "write"} == {
            *(f"{site}/{m.area}/{m.line}/{m.id}/+" for m in cfg.machines),
            f"{site}/_gw/{cfg.gateway_id}/+",
        }
        assert all(cfg.gateway_id in t for _, t in users[cfg.gateway_id + ROLLOUT_USER_SUFFIX])
        firms.add(cfg.firm)
    assert len(firms) == 2, "the ACL is only tested across firms with two firms"
    assert len(mqtt_users) == len(set(mqtt_users)), f"two connections share a user: {mqtt_users}"
    # Mosquitto 2.0.11 applies use_username_as_clientid only after a `listener` line.
    conf = (REPO / "deploy" / "mosquitto" / "compose.conf").read_text().splitlines()
    assert conf.index("use_username_as_clientid true") > conf.index("listener 8883")
    assert "RENKEI_DEMO_MODE" in raw_text


def test_influxdb_writers_share_the_one_user_with_write_access() -> None:
    """The ingest, the rollout controller (model_deploy) and the capacity publisher write
    InfluxDB with the same settings, as the v1 user init-v1.sh grants write access."""
    services = compose()["services"]
    keys = ("RENKEI_INFLUX_URL", "RENKEI_INFLUX_DATABASE", "RENKEI_INFLUX_USERNAME")
    writers = {
        name: {k: svc["environment"][k] for k in keys}
        for name, svc in services.items()
        if "RENKEI_INFLUX_URL" in (svc.get("environment") or {})
    }
    assert set(writers) == {"ingest-1", "ingest-2", "rollout", "capacity", "oee-sync"}
    expected = {
        "RENKEI_INFLUX_URL": "http://influxdb:8086",
        "RENKEI_INFLUX_DATABASE": services["influxdb"]["environment"]["RENKEI_INFLUX_DATABASE"],
        "RENKEI_INFLUX_USERNAME": filled_env()["INFLUXDB_INGEST_USER"],
    }
    assert all(env == expected for env in writers.values()), writers
    for name in writers:
        env = services[name]["environment"]
        assert env["RENKEI_INFLUX_PASSWORD"] == dummy_secret("INFLUXDB_INGEST_PASSWORD"), name
    # The capacity publisher and oee-sync read the registry the API migrates, after
    # InfluxDB is up.
    registry = services["api"]["environment"]["RENKEI_API_DATABASE_URL"]
    for name in ("capacity", "oee-sync"):
        svc = services[name]
        assert svc["environment"]["RENKEI_API_DATABASE_URL"] == registry, name
        assert svc["depends_on"]["api"] == {"condition": "service_healthy"}, name
        assert svc["depends_on"]["influxdb"] == {"condition": "service_healthy"}, name


def test_only_the_broker_api_and_grafana_are_published() -> None:
    published = {n: s["ports"] for n, s in compose()["services"].items() if "ports" in s}
    assert published == {
        "mosquitto": ["8883:8883"],
        "nginx": ["127.0.0.1:8000:8080"],
        "grafana": ["127.0.0.1:3000:3000"],
    }
    conf = (REPO / "deploy" / "mosquitto" / "compose.conf").read_text()
    listeners = [line for line in conf.splitlines() if line.startswith("listener")]
    assert listeners == ["listener 8883"], "the broker has no plain-text listener"
    mosq = compose()["services"]["mosquitto"]
    targets = {c["target"] for c in mosq["configs"]}
    # renkei.conf's queue settings are included by compose.conf
    assert "/mosquitto/config/renkei.d/renkei.conf" in targets
    assert "include_dir /mosquitto/config/renkei.d" in conf


def test_the_api_is_reached_only_through_the_nginx_proxy() -> None:
    doc = compose()
    api, nginx = doc["services"]["api"], doc["services"]["nginx"]
    assert "ports" not in api
    assert nginx["depends_on"]["api"] == {"condition": "service_healthy"}
    # nginx and the API share a network of their own; the API trusts forwarded headers
    # from nginx's fixed address on it, and from nothing else.
    proxy_ip = nginx["networks"]["api-proxy"]["ipv4_address"]
    assert set(nginx["networks"]) == {"api-proxy"}
    assert set(api["networks"]) == {"default", "api-proxy"}
    assert api["environment"]["RENKEI_API_FORWARDED_ALLOW_IPS"] == proxy_ip
    subnet = doc["networks"]["api-proxy"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    # The image renders the mounted template with the env file's NGINX_* values; every
    # placeholder has one, and the body limit equals the API's default.
    assert nginx["env_file"] == ["./deploy/nginx/nginx.env"]
    assert "./deploy/nginx/templates:/etc/nginx/templates:ro" in nginx["volumes"]
    env = read_env_file(REPO / "deploy" / "nginx" / "nginx.env")
    template = (REPO / "deploy" / "nginx" / "templates" / "renkei-api.conf.template").read_text()
    assert set(re.findall(r"\$\{([A-Z0-9_]+)\}", template)) == set(env)
    assert env["NGINX_API_UPSTREAM"] == "api:8000"
    assert env["NGINX_LISTEN_PORT"] == nginx["ports"][0].rsplit(":", 1)[1]
    assert env["NGINX_CLIENT_MAX_BODY_SIZE"] == "10m"
    assert ApiSettings.model_fields["max_body_bytes"].default == 10 * 1024 * 1024


def test_grafana_is_provisioned_from_the_dashboards_directory() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if ":ro" in v)
    assert mounts["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == dummy_secret("GRAFANA_ADMIN_PASSWORD")
    # Every variable the provisioning files read is in Grafana's environment, and the
    # read-only InfluxDB user is the one init-v1.sh creates.
    provisioning = REPO / "dashboards" / "provisioning"
    for path in provisioning.rglob("*.yaml"):
        for name in variables_in(path.read_text()):
            assert name in env, f"{path.relative_to(REPO)} reads ${name}, not set for grafana"
    assert env.get("RENKEI_INFLUXDB_USER") == filled_env()["INFLUXDB_GRAFANA_USER"]
    # The dashboards provider's path is a mounted directory of dashboard files.
    providers = yaml.safe_load((provisioning / "dashboards" / "renkei.yaml").read_text())
    for provider in providers["providers"]:
        target = provider["options"]["path"]
        (source,) = [s for s, t in mounts.items() if t == target]
        assert list((REPO / source).glob("*.json")), f"no dashboards in {source}"


def test_init_service_creates_the_first_firm_once_from_env(tmp_path: Path) -> None:
    """The init service's command and environment, run twice here on a SQLite registry
    (first start: firm, site and the admin key rk_init_<token>; second: nothing)."""
    env_file = filled_env() | {
        "RENKEI_INIT_FIRM_ID": "acme",
        "RENKEI_INIT_FIRM_NAME": "Acme 工業",
        "RENKEI_INIT_REGION": "kansai",
        "RENKEI_INIT_SITE_NAME": "本社工場",
        "RENKEI_INIT_LATITUDE": "34.69",
        "RENKEI_INIT_LONGITUDE": "135.50",
    }
    svc = compose(env_file)["services"]["init"]
    db = tmp_path / "registry.sqlite3"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "200"}
    env |= {k: str(v) for k, v in svc["environment"].items()}
    env["RENKEI_API_DATABASE_URL"] = f"sqlite:///{db}"  # instead of the postgres service
    argv = [sys.executable, "-m", "renkei.cli", *svc["command"][1:]]
    token = env_file["RENKEI_INIT_ADMIN_TOKEN"]
    outputs = []
    for _start in (1, 2):
        run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert token not in run.stdout + run.stderr
        outputs.append(run.stdout)
    assert "acme" in outputs[0] and "rk_init_" in outputs[0]
    assert "nothing to do" in outputs[1]
    from renkei.cloud.registry import make_engine, session_scope, verify_key

    engine = make_engine(f"sqlite:///{db}")
    with session_scope(engine) as s:
        principal = verify_key(s, f"rk_init_{token}")
        assert principal is not None and principal.firm_id == "acme"
        assert principal.role.value == "admin"
    engine.dispose()


def _uv() -> list[str]:
    """How to run uv here (``./dev`` may only have ``python3 -m uv``)."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


@pytest.mark.slow
def test_the_image_runs_every_command_of_the_stack(tmp_path: Path) -> None:
    """The Dockerfile's files and ``uv sync``, done here (offline): every renkei service's
    command must exist with its options, and the registry's psycopg driver must load."""
    dockerfile = (REPO / "Dockerfile").read_text()
    app = tmp_path / "app"
    app.mkdir()
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            for source in words[1:-1]:
                src = REPO / source
                if src.is_dir():
                    shutil.copytree(src, app / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(src, app / source)
    sync = re.search(r"uv sync ([^&\n]+)", dockerfile)
    assert sync is not None and "--frozen" in sync.group(1)
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    env["UV_OFFLINE"] = "1"
    done = subprocess.run(
        [*_uv(), "sync", "--quiet", *sync.group(1).split()],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    bin_dir = app / ".venv" / "bin"
    run_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **filled_env()}
    doc = compose()
    commands: dict[tuple[str, ...], str] = {}  # distinct command lines (ingest-1 = ingest-2)
    for name, svc in doc["services"].items():
        if svc.get("build") != ".":
            continue
        argv = [str(bin_dir / svc["command"][0]), *svc["command"][1:]]
        targets = {c["target"]: doc["configs"][c["source"]]["file"] for c in svc.get("configs", [])}
        argv = [str(REPO / targets[a]) if a in targets else a for a in argv]
        if name != "secrets-check":
            argv.append("--help")
        commands.setdefault(tuple(argv), name)
    procs = {
        name: subprocess.Popen(
            list(argv),
            env=run_env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv, name in commands.items()
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, proc.args, err[-2000:])
    probe = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import sqlalchemy; sqlalchemy.create_engine('postgresql+psycopg://u:p@h/db')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr


# --------------------------------------------------------------------- helper scripts


def _check(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        [sys.executable, str(CHECK_SECRETS)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_secrets_check_accepts_strong_and_refuses_weak_secrets() -> None:
    strong = {k: v for k, v in filled_env().items() if k.endswith(("_PASSWORD", "_TOKEN"))}
    strong["POSTGRES_PASSWORD"] = "pG7-x9Kq2Zt4Lw8Mv3Np6Rs"
    ok = _check(strong)
    assert ok.returncode == 0, ok.stderr
    cases: list[tuple[str, str, str]] = [
        ("MQTT_INGEST_1_PASSWORD", "changeme", "shorter than 16"),
        ("MQTT_INGEST_1_PASSWORD", "Changeme-2024-Renkei!", "well-known word 'changeme'"),
        ("GRAFANA_ADMIN_PASSWORD", "admin-admin-admin-admin", "well-known word"),
        ("MQTT_WATCH_PASSWORD", "abababababababababab", "fewer than 8 different"),
        ("INFLUXDB_ADMIN_TOKEN", "Xy7-short-token-Qw3", "shorter than 32"),
        ("MQTT_ROLLOUT_PASSWORD", strong["MQTT_WATCH_PASSWORD"], "same value as"),
    ]
    for name, value, expected in cases:
        result = _check({**strong, name: value})
        assert result.returncode == 1, (name, value, result.stderr)
        assert expected in result.stderr and name in result.stderr
        if len(value) >= 16:  # (a short one may be one of the words the message names)
            assert value not in result.stderr, "a secret value was printed"
        # Demo mode lets weak secrets through with a warning...
        demo = _check({**strong, name: value, "RENKEI_DEMO_MODE": "true"})
        assert demo.returncode == 0 and "WARNING (demo mode)" in demo.stderr
    # ...but never an empty secret or a database password that breaks the URL.
    for name, value in (
        ("MQTT_INGEST_1_PASSWORD", ""),
        ("POSTGRES_PASSWORD", "p@ss/w:rd#x7Kq9Zt2Lw"),
    ):
        result = _check({**strong, name: value, "RENKEI_DEMO_MODE": "true"})
        assert result.returncode == 1 and "REFUSED" in result.stderr, result.stderr
    assert _check({}).returncode == 2


def test_make_env_writes_strong_unique_secrets(tmp_path: Path) -> None:
    out = tmp_path / ".env"
    run = subprocess.run(
        ["bash", str(MAKE_ENV), "--out", str(out)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    env = read_env_file(out)
    example = read_env_file(ENV_EXAMPLE)
    assert set(env) == set(example)
    secrets = [v for k, v in env.items() if k.endswith(("_PASSWORD", "_TOKEN"))]
    assert all(len(v) == 40 for v in secrets) and len(set(secrets)) == len(secrets)
    assert {k: v for k, v in env.items() if v and example[k]} == {
        k: v for k, v in example.items() if v
    }
    assert _check(env).returncode == 0
    compose(env)  # every required variable is set
    again = subprocess.run(
        ["bash", str(MAKE_ENV), "--out", str(out)], capture_output=True, text=True, timeout=30
    )
    assert again.returncode == 1 and "not overwriting" in again.stderr
    assert read_env_file(out) == env


def test_make_dev_certs_issues_a_ca_and_a_server_certificate(tmp_path: Path) -> None:
    def run(*args: str) -> None:
        done = subprocess.run(
            ["bash", str(MAKE_CERTS), "--dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    run("--host", "mqtt.example.com", "--host", "192.0.2.10")
    assert {p.name for p in tmp_path.iterdir()} == GENERATED_TLS_FILES | {"ca.key"}
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "mosquitto",
        "localhost",
        "mqtt.example.com",
    }
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "192.0.2.10",
    }
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    # Idempotent: a second run keeps the CA and the certificate; --renew keeps the CA.
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    run()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    run("--renew")
    assert (tmp_path / "ca.crt").read_bytes() == before["ca.crt"]
    assert (tmp_path / "server.crt").read_bytes() != before["server.crt"]


def test_influxdb_init_script_maps_the_database_and_creates_least_privilege_users(
    tmp_path: Path,
) -> None:
    """Runs init-v1.sh against a stand-in ``influx`` CLI that records its arguments."""
    log = tmp_path / "influx.log"
    fake = tmp_path / "bin" / "influx"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{fake.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DOCKER_INFLUXDB_INIT_ORG": "renkei",
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": "0123456789abcdef",
        "RENKEI_INFLUX_DATABASE": "renkei",
    }
    compose_env = compose()["services"]["influxdb"]["environment"]
    env.update({k: v for k, v in compose_env.items() if k.startswith("INFLUXDB_")})
    done = subprocess.run(
        [str(INFLUX_INIT)], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == (
        "v1 dbrp create --org renkei --bucket-id 0123456789abcdef --db renkei --rp autogen "
        "--default"
    )
    auths: dict[str, str] = {}
    for call in calls[1:]:
        assert call.startswith("v1 auth create --org renkei --username ")
        user = call.split("--username ")[1].split()[0]
        auths[user] = call
        assert f"--password {env[_password_var(env, user)]}" in call
        assert "--read-bucket 0123456789abcdef" in call
    ingest, api, grafana = (
        env["INFLUXDB_INGEST_USER"],
        env["INFLUXDB_API_USER"],
        env["INFLUXDB_GRAFANA_USER"],
    )
    assert set(auths) == {ingest, api, grafana}
    assert "--write-bucket" in auths[ingest]
    assert "--write-bucket" not in auths[api] and "--write-bucket" not in auths[grafana]
    # A missing password stops the script before any user is made.
    log.unlink()
    env.pop("INFLUXDB_GRAFANA_PASSWORD")
    failed = subprocess.run([str(INFLUX_INIT)], env=env, capture_output=True, text=True, timeout=30)
    assert failed.returncode != 0


def _password_var(env: Mapping[str, str], user: str) -> str:
    """The ``INFLUXDB_*_PASSWORD`` variable that goes with the user named ``user``."""
    (key,) = [k for k, v in env.items() if k.endswith("_USER") and v == user]
    return key.removesuffix("_USER") + "_PASSWORD"
