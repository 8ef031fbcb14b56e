"""Administer a running Mosquitto's dynamic-security plugin (gateway users and roles).

Mosquitto 2.0's dynamic-security plugin (``mosquitto_dynamic_security.so``, in Debian's
``mosquitto`` package) keeps clients (users), roles and their ACLs in a JSON file and
changes them while the broker runs: an admin publishes ``{"commands": [...]}`` to
``$CONTROL/dynamic-security/v1`` and reads ``{"responses": [...]}`` on
``$CONTROL/dynamic-security/v1/response``
(https://mosquitto.org/documentation/dynamic-security/). Deleting or disabling a client
disconnects its sessions at once, without a broker restart and without touching any other
session: that is how ``renkei cloud gateways revoke`` cuts a gateway off.

Public API:

- :class:`DynsecSettings`: the admin connection (a :class:`BrokerSettings` with the admin
  user) and how long to wait for an answer;
- :class:`DynsecAdmin`: ``with DynsecAdmin(settings=...) as admin:`` connects once;
  :meth:`~DynsecAdmin.run` sends commands and returns their ``data``;
  :meth:`~DynsecAdmin.provision_users` / :meth:`~DynsecAdmin.remove_users` create or
  delete users with one role each;
- :func:`role_acls`: a user's :class:`~renkei.cloud.broker_acl.TopicRule` list as the
  plugin's ACL entries, so the dynamic roles and the static ACL file come from the same
  rules (:func:`~renkei.cloud.broker_acl.gateway_rules`, ``cloud_rules``).

Errors: :class:`DynsecRefused` (the plugin answered a command with an error, e.g.
``Client not found``), :class:`DynsecUnavailable` (no connection, login refused, no answer
in time; an :class:`~renkei.core.errors.MqttError`); both are :class:`DynsecError`, a
:class:`~renkei.cloud._exceptions.CloudError`. Passwords are never logged nor put in an
error message.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Final, Self

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from renkei.cloud._exceptions import CloudError
from renkei.cloud.broker_acl import TopicRule
from renkei.core.errors import MqttError
from renkei.core.mqtt import BrokerSettings
from renkei.core.mqtt.client import connect_async, make_client
from renkei.core.mqtt.reasons import connect_error_reason, refusal_reason

__all__ = [
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "DynsecAdmin",
    "DynsecError",
    "DynsecRefused",
    "DynsecSettings",
    "DynsecUnavailable",
    "UserGrant",
    "default_acl_access",
    "render_roles",
    "role_acls",
    "role_name",
]

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
#: The plugin's answers to deleting something that is not there (deletion is idempotent).
_NOT_FOUND: Final = frozenset({"Client not found", "Role not found", "Group not found"})


class DynsecError(CloudError):
    """Administering the broker's dynamic-security plugin failed."""


class DynsecRefused(DynsecError):
    """The plugin answered a command with an error.

    Attributes:
        command: the command's name (``createClient``, ...).
        reason: the plugin's text (``Client already exists``, ``Role not found``, ...).
    """

    def __init__(self, command: str, reason: str, subject: str = "") -> None:
        self.command = command
        self.reason = reason
        where = f" {subject!r}" if subject else ""
        super().__init__(f"dynamic security refused {command}{where}: {reason}")


class DynsecUnavailable(DynsecError, MqttError):
    """The broker cannot be reached, refused the admin login, or did not answer in time
    (is the plugin loaded? does the admin role grant ``$CONTROL/dynamic-security/#``?)."""


class DynsecSettings(BaseModel):
    """How to reach the plugin (immutable, keyword-only).

    Attributes:
        broker: the broker and the admin user's credentials (TLS as for any Renkei
            connection); its ``client_id`` defaults to the user name (compose binds the
            client id to the user name anyway).
        timeout_s: longest wait for the connection and for each answer, seconds (> 0,
            <= 60).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: BrokerSettings = Field(description="broker URL and the dynsec admin user")
    timeout_s: Annotated[float, Field(gt=0, le=60, description="wait per answer, s")] = 5.0


@dataclass(frozen=True, slots=True)
class UserGrant:
    """One MQTT user to create: its password and the rules of its role."""

    username: str
    password: SecretStr
    rules: tuple[TopicRule, ...]


def role_name(username: str) -> str:
    """The role that holds user ``username``'s rules (one role per user)."""
    return f"renkei:{username}"


def role_acls(rules: Iterable[TopicRule]) -> list[dict[str, Any]]:
    """The plugin's ACL entries for ``rules``, with the ACL file's meaning.

    ``write T`` → ``publishClientSend T``; ``read T`` → ``subscribePattern T`` and
    ``publishClientReceive T``. Everything else is denied by :func:`default_acl_access`.
    """
    acls: list[dict[str, Any]] = []
    for rule in rules:
        if rule.access == "write":
            acls.append({"acltype": "publishClientSend", "topic": rule.topic, "allow": True})
        else:
            acls.append({"acltype": "subscribePattern", "topic": rule.topic, "allow": True})
            acls.append({"acltype": "publishClientReceive", "topic": rule.topic, "allow": True})
    return acls


_ROLES_HEADER = """\
# Dynamic-security roles of the compose broker's own MQTT users (the mqtt-user-* secrets
# of docker-compose.yml): role "renkei:{user}" holds exactly the rules of user {user}'s
# block in deploy/mosquitto/acl, as dynamic-security ACLs (write T -> publishClientSend T;
# read T -> subscribePattern T and publishClientReceive T; everything else is denied).
# On the broker's first start deploy/mosquitto/entrypoint.sh runs each line of a user that
# has a secret as `mosquitto_ctrl dynsec LINE`, then creates the user with its password and
# this role. Later starts leave the plugin's file alone.
#
# GENERATED by `renkei cloud broker-acl ... --roles-out` (cloud/broker_dynsec.py) from the
# same rules as the ACL file; tests/unit/test_broker_acl.py checks that both agree.
"""


def render_roles(users: Mapping[str, Sequence[TopicRule]]) -> str:
    """The roles file (``deploy/mosquitto/dynsec-roles``): per user, in the given order,
    ``createRole renkei:{user}`` and one ``addRoleACL renkei:{user} {acltype} {topic}
    allow`` line per entry of :func:`role_acls` of its rules (``mosquitto_ctrl dynsec``
    arguments; topics never contain spaces, :data:`renkei.core.wire.Level`)."""
    out = [_ROLES_HEADER.rstrip("\n")]
    for user, rules in users.items():
        role = role_name(user)
        out += ["", f"createRole {role}"]
        out += [
            f"addRoleACL {role} {acl['acltype']} {acl['topic']} allow" for acl in role_acls(rules)
        ]
    return "\n".join(out) + "\n"


def default_acl_access() -> dict[str, Any]:
    """``setDefaultACLAccess``: deny what no role allows, as the ACL file does (the plugin
    by default lets every client receive every message it subscribed to)."""
    return {
        "command": "setDefaultACLAccess",
        "acls": [
            {"acltype": "publishClientSend", "allow": False},
            {"acltype": "publishClientReceive", "allow": False},
            {"acltype": "subscribe", "allow": False},
            {"acltype": "unsubscribe", "allow": True},
        ],
    }


class DynsecAdmin:
    """One admin connection to the plugin; use as a context manager.

    ``run(*commands)`` sends the commands in one message (the plugin runs them in order)
    and returns each one's ``data`` (``{}`` when it has none); it raises
    :class:`DynsecRefused` for the first command the plugin refused (commands after it
    were still run by the plugin). Thread-safe: calls are serialised.
    """

    def __init__(self, *, settings: DynsecSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._ids = itertools.count(1)
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._client: mqtt.Client | None = None

    # ----------------------------------------------------------------- connection

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and subscribe to the responses.

        Raises:
            DynsecUnavailable: the broker cannot be reached or refused the login, or no
                answer within ``timeout_s``.
        """
        broker = self.settings.broker
        client_id = broker.client_id or broker.username or "renkei-dynsec-admin"
        client = make_client(
            broker, client_id=client_id, persistent_session=False, reconnect_on_failure=False
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        subscribed = threading.Event()
        client.on_subscribe = lambda *_: subscribed.set()
        try:
            connect_async(client, broker, clean_start=True)
            client.loop_start()
        except OSError as exc:
            raise DynsecUnavailable(
                f"dynamic security: {broker.url}: {connect_error_reason(exc)}"
            ) from exc
        self._client = client
        if not self._connected.wait(self.settings.timeout_s) or self._refusal is not None:
            self.close()
            reason = self._refusal or f"no CONNACK within {self.settings.timeout_s} s"
            raise DynsecUnavailable(f"dynamic security: {broker.url}: {reason}")
        client.subscribe(RESPONSE_TOPIC, qos=1)
        if not subscribed.wait(self.settings.timeout_s):
            self.close()
            raise DynsecUnavailable(f"dynamic security: {broker.url}: no SUBACK")

    @property
    def connected(self) -> bool:
        """Whether the admin connection is up (the broker ends it when another connection
        of the same user, i.e. client id, logs in)."""
        client = self._client
        return client is not None and client.is_connected()

    def close(self) -> None:
        """Disconnect (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refusal = refusal_reason(str(reason))
        self._connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        self._refusal = "connection failed (refused, unreachable or TLS)"
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload)
            responses = doc["responses"]
        except (ValueError, KeyError, TypeError):
            return  # not an answer of ours; the waiting call times out and says so
        with self._answered:
            for response in responses if isinstance(responses, list) else ():
                if isinstance(response, dict) and isinstance(response.get("correlationData"), str):
                    self._answers[response["correlationData"]] = response
            self._answered.notify_all()

    # ------------------------------------------------------------------- commands

    def execute(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; return the plugin's responses in order
        (each ``{"command": ..., "error"?: ..., "data"?: ...}``), refused ones included.

        Raises:
            DynsecUnavailable: not connected, or an answer missing after ``timeout_s``.
        """
        client = self._client
        if client is None:
            raise DynsecUnavailable("dynamic security: not connected (use `with DynsecAdmin`)")
        with self._lock:
            ids = [f"renkei-{next(self._ids)}" for _ in commands]
            payload = {
                "commands": [
                    {**command, "correlationData": cid}
                    for command, cid in zip(commands, ids, strict=True)
                ]
            }
            info = client.publish(CONTROL_TOPIC, json.dumps(payload), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise DynsecUnavailable(
                    f"dynamic security: publish failed: {mqtt.error_string(info.rc)}"
                )
            with self._answered:
                done = self._answered.wait_for(
                    lambda: all(cid in self._answers for cid in ids) or self._client is None,
                    timeout=self.settings.timeout_s,
                )
                answers = [self._answers.pop(cid, None) for cid in ids]
        if not done or any(a is None for a in answers):
            names = ", ".join(str(c.get("command")) for c in commands)
            raise DynsecUnavailable(
                f"dynamic security: no answer to {names} within {self.settings.timeout_s} s "
                "(plugin not loaded, or the admin role lacks $CONTROL/dynamic-security/#)"
            )
        return [a for a in answers if a is not None]

    def run(self, *commands: Mapping[str, Any], missing_ok: bool = False) -> list[dict[str, Any]]:
        """:meth:`execute`, raising for a refused command; returns each ``data``.

        Args:
            missing_ok: a "... not found" answer counts as success (idempotent deletes).

        Raises:
            DynsecRefused: the first refused command (its name, subject and the reason).
            DynsecUnavailable: as :meth:`execute`.
        """
        out: list[dict[str, Any]] = []
        for command, response in zip(commands, self.execute(commands), strict=True):
            error = response.get("error")
            if error and not (missing_ok and error in _NOT_FOUND):
                subject = command.get("username") or command.get("rolename") or ""
                raise DynsecRefused(str(command.get("command")), str(error), str(subject))
            data = response.get("data")
            out.append(data if isinstance(data, dict) else {})
        return out

    # ------------------------------------------------------------ users and roles

    def provision_users(self, users: Sequence[UserGrant], *, replace: bool = True) -> None:
        """Create each user with a role of its own holding :func:`role_acls` of its rules.

        Args:
            replace: first delete an existing user and role of the same name (its
                sessions are disconnected; used on re-enrolment and rotation); with
                ``False`` an existing one is refused.

        Raises:
            DynsecRefused: e.g. ``Client already exists`` (``replace=False``).
            DynsecUnavailable: as :meth:`execute`.
        """
        if replace:
            self.remove_users([u.username for u in users])
        commands: list[dict[str, Any]] = []
        for user in users:
            role = role_name(user.username)
            commands.append(
                {"command": "createRole", "rolename": role, "acls": role_acls(user.rules)}
            )
            commands.append(
                {
                    "command": "createClient",
                    "username": user.username,
                    "password": user.password.get_secret_value(),
                    "roles": [{"rolename": role}],
                }
            )
        self.run(*commands)

    def remove_users(self, usernames: Iterable[str]) -> None:
        """Delete each user (disconnecting its sessions at once) and its role; a user or
        role that does not exist is no error.

        Raises:
            DynsecRefused: the plugin refused a deletion for another reason.
            DynsecUnavailable: as :meth:`execute`.
        """
        commands: list[dict[str, Any]] = []
        for username in usernames:
            commands.append({"command": "deleteClient", "username": username})
            commands.append({"command": "deleteRole", "rolename": role_name(username)})
        if commands:
            self.run(*commands, missing_ok=True)

    def disable_users(self, usernames: Iterable[str]) -> None:
        """Disable each user (``disableClient``): its sessions end at once and its logins
        are refused until enabled; a user that does not exist is no error.

        Raises:
            DynsecRefused: the plugin refused for another reason.
            DynsecUnavailable: as :meth:`execute`.
        """
        commands = [{"command": "disableClient", "username": u} for u in usernames]
        if commands:
            self.run(*commands, missing_ok=True)

    def get_client(self, username: str) -> dict[str, Any] | None:
        """The plugin's record of ``username`` (``{"username", "roles", "disabled"?, ...}``)
        or ``None`` if there is none."""
        try:
            (data,) = self.run({"command": "getClient", "username": username})
        except DynsecRefused as exc:
            if exc.reason in _NOT_FOUND:
                return None
            raise
        client = data.get("client")
        return client if isinstance(client, dict) else None
