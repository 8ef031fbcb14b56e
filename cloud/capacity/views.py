"""Sharing views of one viewer, prepared and cached for the partner search.

:class:`ViewCache` keeps :func:`renkei.cloud.capacity.policy.views_for` per viewer until
grants change; :class:`ViewSet` memoises the per-owner arrays (:class:`Owners`) a search
over one :class:`~renkei.cloud.capacity.index.CapacityIndex` version derives from them.
Used by :func:`renkei.cloud.capacity.search.search`; one :class:`ViewCache` per
:class:`~renkei.cloud.capacity.context.CapacityContext`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.cloud.capacity.index import CapacityIndex, IntArray
from renkei.cloud.capacity.policy import SharedView, class_allowed, views_for
from renkei.cloud.registry import ShareGranularity, SharingGrant

__all__ = ["Owners", "ViewCache", "ViewSet"]

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class ViewSet:
    """The views of one viewer (owner firm id -> :class:`SharedView`) as cached.

    Also memoises the per-owner arrays a search derives from the views for one index
    version, so repeated searches of one viewer skip that work.
    """

    __slots__ = ("_prepared", "views")

    def __init__(self, views: dict[str, SharedView]) -> None:
        self.views = views
        self._prepared: tuple[tuple[int, float], Owners] | None = None

    def owners(self, index: CapacityIndex, viewer_firm_id: str) -> Owners:
        """Owner arrays for ``index`` (computed once per index version)."""
        key = (id(index), index.built_at)
        memo = self._prepared
        if memo is not None and memo[0] == key:
            return memo[1]
        owners = Owners.make(index, self.views, viewer_firm_id)
        self._prepared = (key, owners)
        return owners


@dataclass(frozen=True, slots=True)
class Owners:
    """Per owner (in firm id order): index position, granularity, detail, allowed classes."""

    firm_ids: list[str]
    views: list[SharedView]
    positions: IntArray
    week: np.ndarray[Any, Any]
    detail: np.ndarray[Any, Any]
    allowed: np.ndarray[Any, Any]
    """(owners, classes) bool: the class is in the owner's view."""

    @staticmethod
    def make(index: CapacityIndex, views: dict[str, SharedView], viewer: str) -> Owners:
        chosen = sorted(
            (fid, v) for fid, v in views.items() if fid != viewer and fid in index.firm_pos
        )
        n = len(chosen)
        view_list = [v for _, v in chosen]
        kinds: dict[frozenset[str], int] = {}
        kind_of = np.fromiter(
            (kinds.setdefault(v.classes, len(kinds)) for v in view_list), np.int64, n
        )
        table = np.zeros((max(len(kinds), 1), len(index.class_ids)), dtype=np.bool_)
        for classes, k in kinds.items():
            table[k] = [class_allowed(classes, c) for c in index.class_ids]
        return Owners(
            firm_ids=[f for f, _ in chosen],
            views=view_list,
            positions=np.fromiter((index.firm_pos[f] for f, _ in chosen), np.int64, n),
            week=np.fromiter(
                (v.granularity is ShareGranularity.WEEK for v in view_list), np.bool_, n
            ),
            detail=np.fromiter((v.machine_detail for v in view_list), np.bool_, n),
            allowed=table[kind_of],
        )


@dataclass(slots=True)
class _CachedViews:
    grants_version: int
    computed_at: datetime
    valid_until: datetime
    views: ViewSet
    made_at: float


class ViewCache:
    """:func:`renkei.cloud.capacity.policy.views_for` per viewer, reused until grants change.

    An entry is reused while the engine's ``grants_version`` is unchanged (any commit
    touching grants, groups, memberships or firms through this process bumps it), until
    the earliest ``expires_at`` of the grants it was made from, and for at most
    ``max_age_s`` seconds (which bounds how long a grant revoked through *another* process
    still applies here). Least recently used viewers beyond ``maxsize`` are dropped.
    Thread-safe.
    """

    def __init__(self, maxsize: int = 4096, max_age_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._maxsize = maxsize
        self._max_age_s = max_age_s
        self._entries: OrderedDict[str, _CachedViews] = OrderedDict()

    def views(
        self, session: Session, *, viewer_firm_id: str, now: datetime, grants_version: int
    ) -> ViewSet:
        """The views for ``viewer_firm_id`` at ``now`` (aware)."""
        with self._lock:
            hit = self._entries.get(viewer_firm_id)
            if (
                hit is not None
                and hit.grants_version == grants_version
                and hit.computed_at <= now < hit.valid_until
                and time.monotonic() - hit.made_at <= self._max_age_s
            ):
                self._entries.move_to_end(viewer_firm_id)
                return hit.views
        views = views_for(session, viewer_firm_id=viewer_firm_id, now=now)
        ids = [gid for v in views.values() for gid in v.grant_ids]
        valid_until = _FAR_FUTURE
        for i in range(0, len(ids), 5000):
            first = session.scalar(
                select(func.min(SharingGrant.expires_at)).where(
                    SharingGrant.id.in_(ids[i : i + 5000]), SharingGrant.expires_at.is_not(None)
                )
            )
            if first is not None:
                first = first if first.tzinfo else first.replace(tzinfo=UTC)
                valid_until = min(valid_until, first)
        view_set = ViewSet(views)
        with self._lock:
            self._entries[viewer_firm_id] = _CachedViews(
                grants_version, now, valid_until, view_set, time.monotonic()
            )
            self._entries.move_to_end(viewer_firm_id)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return view_set
