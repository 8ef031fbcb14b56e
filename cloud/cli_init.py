"""``renkei cloud init``: the first firm, site and admin key of an empty registry.

Defined beside :mod:`renkei.cloud.cli` (not in :mod:`renkei.cloud.api`, whose import
builds the whole app) so that every ``renkei`` command starts as fast as before. Reads the
registry the API reads (``RENKEI_API_DATABASE_URL``, parsed once by
:func:`renkei.cloud.api.settings.load_api_settings`), migrates it, and in one transaction
creates the firm, its first site and an admin key (:mod:`renkei.cloud.registry.bootstrap`).
Then it prints, in Japanese or English, how to sign in to the partner web page and call
the API with that key; the key is shown only then.

Exit status: 0 created (or, with ``--if-empty``, nothing to do); 1 the registry already
holds a firm (nothing written) or the database failed; 2 a bad option or setting, named
on one line.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from renkei.cloud.cli_options import RegistryUrl
from renkei.cloud.registry import make_engine, session_scope
from renkei.cloud.registry.bootstrap import (
    INIT_KEY_ID,
    RegistryAlreadyInitialised,
    UnknownFirm,
    add_admin_key,
    firm_count,
    initialise,
)
from renkei.cloud.registry.credentials import MIN_SECRET_LENGTH
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.registry.schemas import FirmCreate, SiteCreate
from renkei.core.errors import ConfigError

__all__ = ["init_command"]

Lang = Literal["ja", "en"]
_Model = TypeVar("_Model", FirmCreate, SiteCreate)

#: Option (and variable) of each firm/site field, to name it in a one-line error.
_FIRM_OPTIONS = {"id": "--firm-id", "name": "--firm-name", "region": "--region"}
_SITE_OPTIONS = {
    "id": "--site-id",
    "name": "--site-name",
    "region": "--region",
    "latitude_deg": "--latitude",
    "longitude_deg": "--longitude",
    "prefecture": "--prefecture",
    "address": "--address",
}
_ENV = {
    "--firm-id": "RENKEI_INIT_FIRM_ID",
    "--firm-name": "RENKEI_INIT_FIRM_NAME",
    "--site-id": "RENKEI_INIT_SITE_ID",
    "--site-name": "RENKEI_INIT_SITE_NAME",
    "--region": "RENKEI_INIT_REGION",
    "--latitude": "RENKEI_INIT_LATITUDE",
    "--longitude": "RENKEI_INIT_LONGITUDE",
    "--prefecture": "RENKEI_INIT_PREFECTURE",
    "--address": "RENKEI_INIT_ADDRESS",
    "--admin-token": "RENKEI_INIT_ADMIN_TOKEN",
    "--url": "RENKEI_PUBLIC_URL",
    "--lang": "RENKEI_LANG",
}

_TEXT: dict[str, dict[Lang, str]] = {
    "created": {
        "en": "Renkei is initialised: firm {firm} ({name}), site {site}.",
        "ja": "Renkei を初期化しました: 企業 {firm}（{name}）、拠点 {site}。",
    },
    "key": {
        "en": "Admin API key (shown only now; keep it in a password manager):",
        "ja": "管理者 API キー（表示は今回だけです。パスワード管理ツールに保管してください）:",
    },
    "key_from_env": {
        "en": "Admin API key: rk_init_ followed by the token you gave (--admin-token / "
        "RENKEI_INIT_ADMIN_TOKEN in .env); it is not printed.",
        "ja": "管理者 API キー: rk_init_ の後に指定したトークン（--admin-token / .env の "
        "RENKEI_INIT_ADMIN_TOKEN）を続けたものです。ここには表示しません。",
    },
    "extra": {
        "en": "One more admin API key of firm {firm} (shown only now):",
        "ja": "企業 {firm} の管理者 API キーを追加しました（表示は今回だけです）:",
    },
    "steps": {
        "en": "Next:",
        "ja": "次の手順:",
    },
    "step_api": {
        "en": "1. Start the API if it is not running:  renkei cloud api",
        "ja": "1. API が動いていなければ起動します:  renkei cloud api",
    },
    "step_web": {
        "en": "2. Partner web page: open {url}/app/ , paste the key, press Sign in.",
        "ja": "2. パートナー向け Web ページ: {url}/app/ を開き、キーを貼り付けてサインインします。",
    },
    "step_call": {
        "en": "3. Call the API with the header  Authorization: Bearer <key>  e.g.",
        "ja": "3. API はヘッダ  Authorization: Bearer <キー>  を付けて呼びます。例:",
    },
    "step_docs": {
        "en": "API reference (works offline): {url}/docs",
        "ja": "API リファレンス（オフラインでも表示）: {url}/docs",
    },
    "already": {
        "en": "renkei cloud init: the registry already holds {count} firm(s); no admin key "
        "was created (to issue one more: --extra-admin-key --firm-id ID)",
        "ja": "renkei cloud init: レジストリには既に {count} 社が登録されています。管理者キーは"
        "作成していません（追加するには --extra-admin-key --firm-id ID）",
    },
    "nothing": {
        "en": "renkei cloud init: the registry already holds {count} firm(s); nothing to do",
        "ja": "renkei cloud init: レジストリには既に {count} 社が登録されています。何もしません",
    },
}


def _default_lang() -> Lang:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _bad_option(option: str, value: object, expected: str) -> typer.Exit:
    return _fail(f"invalid {option} ({_ENV[option]}) {value!r}: expected {expected}")


def _validated(model: type[_Model], options: dict[str, str], **values: object) -> _Model:
    """``model(**values)``, or exit 2 naming the option of the first bad field."""
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = str(error["loc"][0])
        option = options[field]
        expected = str(error["msg"]).removeprefix("Input should be ")
        if error["type"] == "string_pattern_mismatch":
            expected = "1..64 letters, digits, '_', '.' or '-'"
        raise _bad_option(option, values.get(field), expected) from None


def init_command(
    firm_id: Annotated[
        str | None, typer.Option(envvar=_ENV["--firm-id"], help="id of the first firm, e.g. acme")
    ] = None,
    firm_name: Annotated[
        str | None, typer.Option(envvar=_ENV["--firm-name"], help="the firm's name")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(envvar=_ENV["--region"], help="region of the firm and site, e.g. kansai"),
    ] = None,
    site_name: Annotated[
        str | None, typer.Option(envvar=_ENV["--site-name"], help="name of the first site")
    ] = None,
    latitude: Annotated[
        float | None,
        typer.Option(envvar=_ENV["--latitude"], help="site latitude, degrees -90..90 (WGS 84)"),
    ] = None,
    longitude: Annotated[
        float | None,
        typer.Option(envvar=_ENV["--longitude"], help="site longitude, degrees -180..180 (WGS 84)"),
    ] = None,
    site_id: Annotated[
        str | None,
        typer.Option(envvar=_ENV["--site-id"], help="id of the first site (default <firm-id>-s1)"),
    ] = None,
    prefecture: Annotated[str, typer.Option(envvar=_ENV["--prefecture"])] = "",
    address: Annotated[str, typer.Option(envvar=_ENV["--address"])] = "",
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar=_ENV["--admin-token"],
            help=f"use this secret (≥ {MIN_SECRET_LENGTH} characters) for the admin key "
            f"rk_{INIT_KEY_ID}_<token> instead of a random key (the compose stack's .env); "
            "the key is then not printed",
            show_default=False,
        ),
    ] = None,
    if_empty: Annotated[
        bool,
        typer.Option(
            "--if-empty",
            help="on a registry that already holds a firm, do nothing and exit 0 "
            "(first-start scripts)",
        ),
    ] = False,
    extra_admin_key: Annotated[
        bool,
        typer.Option(
            "--extra-admin-key",
            help="on an initialised registry, issue one more admin key of --firm-id",
        ),
    ] = False,
    url: Annotated[
        str,
        typer.Option(envvar=_ENV["--url"], help="where users reach the API (printed only)"),
    ] = "http://127.0.0.1:8000",
    lang: Annotated[
        str | None,
        typer.Option(envvar=_ENV["--lang"], help="ja or en (default: from LANG)"),
    ] = None,
    database_url: RegistryUrl = None,
    migrate: Annotated[
        bool, typer.Option(help="bring the registry schema to the newest revision first")
    ] = True,
) -> None:
    """Create the first firm, its first site and an admin API key on an empty registry.

    Prints how to sign in to the partner web page and call the API.

    Refuses (exit 1) a registry that already holds a firm, unless --if-empty (then it does
    nothing) or --extra-admin-key (one more admin key of --firm-id).
    """
    from renkei.cloud.api.settings import load_api_settings  # lazy: the API package is heavy

    if lang is None:
        language: Lang = _default_lang()
    elif lang in ("ja", "en"):
        language = "ja" if lang == "ja" else "en"
    else:
        raise _bad_option("--lang", lang, "ja or en")
    try:
        settings = load_api_settings(**({"database_url": database_url} if database_url else {}))
    except ConfigError as exc:
        raise _fail(f"invalid configuration: {exc}") from None
    if if_empty and extra_admin_key:
        raise _fail("invalid options: --if-empty and --extra-admin-key exclude each other")
    if admin_token is not None and len(admin_token) < MIN_SECRET_LENGTH:
        raise _fail(
            f"invalid --admin-token ({_ENV['--admin-token']}): expected at least "
            f"{MIN_SECRET_LENGTH} characters (value not shown)"
        )
    firm: FirmCreate | None = None
    site: SiteCreate | None = None
    if not extra_admin_key:
        missing = [
            option
            for option, value in (
                ("--firm-id", firm_id),
                ("--firm-name", firm_name),
                ("--region", region),
                ("--site-name", site_name),
                ("--latitude", latitude),
                ("--longitude", longitude),
            )
            if value is None or value == ""
        ]
        if missing:
            raise _fail("missing " + ", ".join(f"{o} ({_ENV[o]})" for o in missing))
        firm = _validated(FirmCreate, _FIRM_OPTIONS, id=firm_id, name=firm_name, region=region)
        site = _validated(
            SiteCreate,
            _SITE_OPTIONS,
            id=site_id or f"{firm.id}-s1",
            firm_id=firm.id,
            name=site_name,
            region=region,
            latitude_deg=latitude,
            longitude_deg=longitude,
            prefecture=prefecture,
            address=address,
        )
    url = url.rstrip("/")
    out = Console(highlight=False, soft_wrap=True)

    def say(key: str, **fields: object) -> None:
        out.print(escape(_TEXT[key][language].format(**fields)))

    engine = make_engine(settings.database_url)
    try:
        if migrate:
            upgrade(engine.url.render_as_string(hide_password=False))
        with session_scope(engine) as session:
            count = firm_count(session)
            if count and if_empty:
                say("nothing", count=count)
                return
            if extra_admin_key:
                if not count:
                    raise _fail(
                        "renkei cloud init: the registry is empty; run it without "
                        "--extra-admin-key first",
                        1,
                    )
                if not firm_id:
                    raise _fail("missing --firm-id (RENKEI_INIT_FIRM_ID): whose admin key?")
                try:
                    _key_id, key = add_admin_key(session, firm_id=firm_id)
                except UnknownFirm as exc:
                    raise _bad_option("--firm-id", firm_id, f"an existing firm ({exc})") from None
                say("extra", firm=firm_id)
                out.print(escape(key))
                return
            if count:
                raise _fail(_TEXT["already"][language].format(count=count), 1)
            assert firm is not None and site is not None
            try:
                done = initialise(session, firm=firm, site=site, admin_secret=admin_token)
            except RegistryAlreadyInitialised:  # another init won the race
                raise _fail(_TEXT["already"][language].format(count=1), 1) from None
    except SQLAlchemyError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(f"renkei cloud init: registry database: {first_line}", 1) from None
    finally:
        engine.dispose()
    say("created", firm=done.firm_id, name=firm.name, site=done.site_id)
    if admin_token is None:
        say("key")
        out.print(escape(done.key))
        key_shown = "<key>"
    else:
        say("key_from_env")
        key_shown = "rk_init_<token>"
    out.print()
    say("steps")
    say("step_api")
    say("step_web", url=url)
    say("step_call")
    out.print(
        escape(
            f'   curl -H "Authorization: Bearer {key_shown}" '
            f"{url}/api/v1/firms/{done.firm_id}/sites"
        )
    )
    say("step_docs", url=url)
