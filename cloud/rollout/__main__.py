"""``python -m cloud.rollout``: run the rollout controller until SIGINT/SIGTERM.

Options can also be given as environment variables (``RENKEI_API_DATABASE_URL``,
``RENKEI_BROKER``, ``RENKEI_MQTT_USERNAME``, ``RENKEI_MQTT_PASSWORD``,
``RENKEI_ROLLOUT_CLIENT_ID``).
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer
from pydantic import SecretStr

from cloud.rollout.controller import RolloutController, RolloutSettings

__all__ = ["app", "rollout"]

app = typer.Typer(no_args_is_help=False, pretty_exceptions_show_locals=False)


@app.command("rollout")
def rollout(
    database_url: Annotated[
        str, typer.Option(envvar="RENKEI_API_DATABASE_URL", help="registry database URL")
    ] = "sqlite:///renkei-registry.sqlite3",
    broker: Annotated[
        str, typer.Option(envvar="RENKEI_BROKER", help="mqtt://host:port or mqtts://host:port")
    ] = "mqtt://127.0.0.1:1883",
    mqtt_username: Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_USERNAME")] = None,
    mqtt_password: Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_PASSWORD")] = None,
    client_id: Annotated[
        str, typer.Option(envvar="RENKEI_ROLLOUT_CLIENT_ID", help="MQTT client id")
    ] = "renkei-rollout",
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Drive model deployments: store gateway reports, publish desired states."""
    from cloud.registry.migrate import upgrade

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    upgrade(database_url)  # the registry schema, as `renkei cloud api` does at start
    controller = RolloutController(
        RolloutSettings(
            database_url=database_url,
            broker_url=broker,
            client_id=client_id,
            username=mqtt_username,
            password=None if mqtt_password is None else SecretStr(mqtt_password),
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: controller.stop())
    signal.signal(signal.SIGINT, lambda *_: controller.stop())
    controller.run()


if __name__ == "__main__":  # pragma: no cover
    app()
