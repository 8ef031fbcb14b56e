"""The first firm, site and admin key of an empty registry (``renkei cloud init``).

A fresh registry has no credential, so every API call answers 401 until something writes
the first admin key. :func:`initialise` does it, with the firm and site that key belongs
to, in the caller's transaction; it refuses a registry that already has a firm, so
re-running it never creates a second admin silently. :func:`add_admin_key` issues one more
admin key of an existing firm when that is really wanted (a lost key, a second operator).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import CloudError
from renkei.cloud.registry.credentials import issue_key
from renkei.cloud.registry.models import Firm, Role, Site
from renkei.cloud.registry.schemas import FirmCreate, SiteCreate

__all__ = [
    "INIT_KEY_ID",
    "Bootstrap",
    "RegistryAlreadyInitialised",
    "UnknownFirm",
    "add_admin_key",
    "firm_count",
    "initialise",
]

INIT_KEY_ID = "init"
"""Key id of an admin key whose secret the operator chose beforehand
(``rk_init_<secret>``; the compose stack's ``RENKEI_INIT_ADMIN_TOKEN`` in ``.env``)."""

LABEL = "renkei cloud init"


class RegistryAlreadyInitialised(CloudError):
    """:func:`initialise` on a registry that already holds a firm (nothing was written)."""


class UnknownFirm(CloudError):
    """:func:`add_admin_key` for a firm id the registry does not hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bootstrap:
    """What :func:`initialise` created.

    Attributes:
        firm_id: the first firm.
        site_id: its first site.
        key_id: the public id of its admin key.
        key: the full admin key ``rk_{key_id}_{secret}``: show it once, never log it.
    """

    firm_id: str
    site_id: str
    key_id: str
    key: str


def firm_count(session: Session) -> int:
    """How many firms the registry holds (``0`` = not initialised)."""
    return session.scalar(select(func.count()).select_from(Firm)) or 0


def initialise(
    session: Session, *, firm: FirmCreate, site: SiteCreate, admin_secret: str | None = None
) -> Bootstrap:
    """Create the first firm, its first site and an admin key, in ``session``'s transaction.

    Args:
        firm: the firm; ``site.firm_id`` must be ``firm.id``.
        site: its first site.
        admin_secret: the admin key's secret chosen beforehand (at least 32 characters);
            the key is then ``rk_init_<admin_secret>``. Default: a random key.

    Raises:
        RegistryAlreadyInitialised: the registry already holds a firm.
        ValueError: ``site.firm_id`` is not ``firm.id``, or ``admin_secret`` is too short.
    """
    if site.firm_id != firm.id:
        raise ValueError(f"site firm_id {site.firm_id!r}: expected the firm's id {firm.id!r}")
    count = firm_count(session)
    if count:
        raise RegistryAlreadyInitialised(
            f"the registry already holds {count} firm(s); nothing was created"
        )
    session.add(Firm(**firm.model_dump()))
    session.flush()
    session.add(Site(**site.model_dump()))
    session.flush()
    key = issue_key(
        session,
        firm_id=firm.id,
        role=Role.ADMIN,
        label=LABEL,
        key_id=None if admin_secret is None else INIT_KEY_ID,
        secret=admin_secret,
    )
    return Bootstrap(firm_id=firm.id, site_id=site.id, key_id=_key_id(key), key=key)


def add_admin_key(session: Session, *, firm_id: str) -> tuple[str, str]:
    """Issue one more admin key of an existing firm: ``(key_id, key)``.

    Raises:
        UnknownFirm: no firm ``firm_id``.
    """
    if session.get(Firm, firm_id) is None:
        raise UnknownFirm(f"no firm {firm_id!r} in the registry")
    key = issue_key(session, firm_id=firm_id, role=Role.ADMIN, label=LABEL + " --extra-admin-key")
    return _key_id(key), key


def _key_id(key: str) -> str:
    return key.removeprefix("rk_").partition("_")[0]
