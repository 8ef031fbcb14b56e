"""The in-memory capacity index: every machine's attributes and spare hours, for search.

Partner search (:mod:`renkei.cloud.capacity.search`) and regional aggregates must look at the whole
registry (10,000 firms / 100,000 machines) within milliseconds, which rules out reading
machines and bookings from the database per request (≈ 2–3 s at that size). The index
keeps what they need in numpy arrays:

- per machine row: firm, site, capability class, calendar, availability ratio, the
  compatibility attributes (kN, mm, g; ``NaN`` = not applicable) and a row of *booked
  hours* per day (``float32``) in an append-only store;
- per calendar: scheduled hours per day (a few distinct calendars serve all machines);
- per firm: name, region, and its live machine rows (CSR layout ``by_firm``/``firm_ptr``).

Spare hours are computed on the fly for the rows a request selects, with the formula of
:mod:`renkei.cloud.capacity.spare`: ``max(0, available - booked - available × (1 - ratio))``.

Columns are site-local days from :attr:`CapacityIndex.start` (today in
``settings.timezone`` when built) for ``settings.horizon_days`` + 7 days, so an index
built yesterday still covers today's horizon; spare hours of a date do not depend on
the day the index was built.

One module per job:

- :mod:`~renkei.cloud.capacity.index.changelog`: the ORM change log (which firms changed);
- :mod:`~renkei.cloud.capacity.index.arrays`: :class:`CapacityIndex`, one immutable version;
- :mod:`~renkei.cloud.capacity.index.build`: registry rows to arrays (full build, patch);
- :mod:`~renkei.cloud.capacity.index.service`: :class:`CapacityIndexService`, which keeps a
  context's current index fresh (``CapacityContext.index``);
- :mod:`~renkei.cloud.capacity.index.remote`: other processes' commits (PostgreSQL
  ``LISTEN``/``NOTIFY``).

Freshness (what a search sees):

- Every commit of a session that adds, changes or deletes a firm, site, line, machine or
  booking is recorded in the engine's :class:`ChangeLog` (SQLAlchemy ``after_flush`` /
  ``after_commit`` listeners, :func:`install_listeners`). The next request patches the
  index *per firm*: the firm's rows are re-read (a few indexed queries, milliseconds)
  and replace its old rows. So registry and booking changes are visible at once.
- Bulk DML statements on those tables (``session.execute(insert(Machine), rows)``) and
  changes of more than :data:`PATCH_MAX_FIRMS` firms at once trigger a full rebuild.
- Writes through another process's sessions (another API worker, the CLI) are, on
  PostgreSQL, signalled on commit by ``NOTIFY`` and make the index stale at once, like an
  expired one (:mod:`~renkei.cloud.capacity.index.remote`, started by the API). On SQLite,
  and for writes outside any session (raw SQL), they are picked up by the periodic full
  rebuild every ``settings.capacity_cache_s`` seconds, which also refreshes measured
  availability and compacts rows of replaced firms.
- Full rebuilds of large indexes (more than :data:`SYNC_REBUILD_MAX_MACHINES` machines)
  that are only due to age, a new day or another process's change run in a background
  thread while requests keep using the previous index; the first build, and rebuilds
  forced by this process's changes, are done in the request.
"""

from renkei.cloud.capacity.index.arrays import (
    ATTRIBUTES,
    BoolArray,
    CapacityIndex,
    FloatArray,
    IntArray,
    normalize_label,
)
from renkei.cloud.capacity.index.changelog import (
    CHANGED_FIRMS,
    ChangeLog,
    ChangeSet,
    change_log,
    install_listeners,
)
from renkei.cloud.capacity.index.service import (
    PATCH_MAX_FIRMS,
    SLACK_DAYS,
    SYNC_REBUILD_MAX_MACHINES,
    CapacityIndexService,
)

__all__ = [
    "ATTRIBUTES",
    "CHANGED_FIRMS",
    "PATCH_MAX_FIRMS",
    "SLACK_DAYS",
    "SYNC_REBUILD_MAX_MACHINES",
    "BoolArray",
    "CapacityIndex",
    "CapacityIndexService",
    "ChangeLog",
    "ChangeSet",
    "FloatArray",
    "IntArray",
    "change_log",
    "install_listeners",
    "normalize_label",
]
