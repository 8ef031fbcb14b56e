"""The demo's live terminal view (rich), fitted to the terminal's width.

:class:`LiveView` is a rich renderable: rich asks it for the console's width on every
refresh. Below :data:`WIDE` (120) columns the table is compact: machine, rows, state,
score, anomalies, last event, backlog. From 120 on it adds the source and the threshold,
from :data:`FULL` (160) the gateway, the dropped messages and the long state texts.
Dropped messages move to the footer when their column is not shown. No cell ever wraps:
columns get their natural width, and when the sum is too wide the low-value ones (source,
last event, ...) give up width and end in an ellipsis, so each machine stays one line.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Console, ConsoleOptions, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from renkei.cloud.ingest.stats import IngestStats
    from renkei.demo.runner import DemoRun

__all__ = ["FULL", "WIDE", "LiveView"]

#: From this console width on the table shows the source and threshold, characters.
WIDE: Final = 120
#: From this console width on the table shows every column and the long texts.
FULL: Final = 160


def _fmt(value: object, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Column:
    header: str
    compact: str  # header below WIDE
    shown_from: int = 0  # least console width that shows the column
    justify: str = "left"


_COLUMNS: Final = (
    _Column("gateway", "gateway", FULL),
    _Column("machine", "machine"),
    _Column("source", "source", WIDE),
    _Column("rows", "rows", justify="right"),
    _Column("state", "state"),
    _Column("score", "score", justify="right"),
    _Column("threshold", "threshold", WIDE, "right"),
    _Column("anomalies", "anom.", justify="right"),
    _Column("last event", "last event"),
    _Column("backlog", "backlog", justify="right"),
    _Column("dropped", "dropped", FULL, "right"),
)


#: Columns that give up width when the table does not fit, first to last; the others
#: (numbers, the machine) keep theirs.
_SHRINK_ORDER: Final = ("source", "last event", "gateway", "state", "machine")


def _fit(names: list[str], natural: list[int], least: list[int], width: int) -> list[int]:
    """Column widths for a table ``width`` characters wide (3 characters between two
    columns: padding and rule): columns get their natural width; when the sum is too
    wide, the columns of :data:`_SHRINK_ORDER` give up width in that order, each down to
    ``least``."""
    widths = list(natural)
    excess = sum(widths) + 3 * len(widths) - 1 - width
    for name in _SHRINK_ORDER:
        if excess <= 0:
            break
        if name not in names:
            continue
        i = names.index(name)
        cut = min(excess, widths[i] - least[i])
        if cut > 0:
            widths[i] -= cut
            excess -= cut
    return widths


def _state(mst: dict[str, Any], *, compact: bool) -> Text:
    if mst.get("finished"):
        return Text("finished", style="dim")
    pending = mst.get("baseline_pending")
    if isinstance(pending, int) and pending > 0:
        text = f"baseline {pending}" if compact else f"baseline ({pending} rows to go)"
        return Text(text, style="yellow")
    if mst.get("anomaly"):
        return Text("ANOMALY", style="bold red")
    return Text("normal", style="green")


class LiveView:
    """Renders machines, anomaly scores, events, outbox backlog and ingest rate.

    Print it (or hand it to ``rich.live.Live``) and it fits the console's width; or call
    :meth:`render` with a width.
    """

    def __init__(self, run: DemoRun) -> None:
        self.run = run
        self._rates: deque[tuple[float, int, int]] = deque(maxlen=10)
        self._started = time.monotonic()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Group]:
        yield self.render(width=options.max_width)

    def _ingest_rates(self, st: IngestStats) -> tuple[float, float]:
        now = time.monotonic()
        self._rates.append((now, st.messages, st.field_values))
        t0, m0, f0 = self._rates[0]
        dt = max(now - t0, 1e-9)
        return (st.messages - m0) / dt, (st.field_values - f0) / dt

    def machine_table(self, width: int = WIDE) -> tuple[Table, list[str], int]:
        """The machines table for a console ``width`` characters wide, the recent events
        (``"machine: event"``) and the outboxes' dropped messages in total."""
        compact = width < WIDE
        shown = [c for c in _COLUMNS if width >= c.shown_from]
        rows: list[list[Text]] = []
        events: list[str] = []
        dropped = 0
        for agent in self.run.agents:
            ob = agent.outbox.stats()
            dropped += ob.dropped_total
            for m in agent.config.machines:
                mst: dict[str, Any] = agent.stats.machines.get(m.id, {})
                event = _fmt(mst.get("last_event"))
                cells: dict[str, str | Text] = {
                    "gateway": agent.config.gateway_id,
                    "machine": m.id,
                    "source": str(mst.get("source", m.source.type)),
                    "rows": _fmt(mst.get("rows")),
                    "state": _state(mst, compact=width < FULL),
                    "score": _fmt(mst.get("score")),
                    "threshold": _fmt(mst.get("threshold")),
                    "anomalies": _fmt(mst.get("anomalies")),
                    "last event": event.removeprefix("anomaly_") if compact else event,
                    "backlog": str(ob.backlog_msgs),
                    "dropped": str(ob.dropped_total),
                }
                rows.append(
                    [Text(v) if isinstance(v, str) else v for v in (cells[c.header] for c in shown)]
                )
                for e in mst.get("events", []) or []:
                    events.append(f"{m.id}: {e}")
        headers = [c.compact if compact else c.header for c in shown]
        widths = _fit(
            [c.header for c in shown],
            [max([len(h), *(r[i].cell_len for r in rows)]) for i, h in enumerate(headers)],
            [len(h) for h in headers],
            width,
        )
        table = Table(
            title="Machines (gateway → MQTT → ingest → store)",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 1),
        )
        for col, header, w in zip(shown, headers, widths, strict=True):
            table.add_column(
                header,
                justify=col.justify,  # type: ignore[arg-type]
                no_wrap=True,
                overflow="ellipsis",
                width=w,
            )
        for row in rows:
            table.add_row(*row)
        return table, events, dropped

    def render(self, width: int = WIDE) -> Group:
        """The whole view for a console ``width`` characters wide (see the module docstring)."""
        machines, events, dropped = self.machine_table(width)
        worker = self.run.worker
        ingest = Table.grid(padding=(0, 2))
        ingest.add_column(no_wrap=True)
        ingest.add_column(no_wrap=True)
        ingest.add_column(no_wrap=True, overflow="ellipsis")
        if worker is not None:
            st = worker.stats()
            msg_rate, fv_rate = self._ingest_rates(st)
            ingest.add_row("ingest messages", str(st.messages), f"{msg_rate:,.0f}/s")
            ingest.add_row("field values", f"{st.field_values:,}", f"{fv_rate:,.0f}/s")
            ingest.add_row("points written", f"{st.points:,}", "")
            dl = sum(st.dead_letters.values())
            ingest.add_row(
                "dead letters", str(dl), ", ".join(f"{k}={v}" for k, v in st.dead_letters.items())
            )
        uptime = time.monotonic() - self._started
        footer = f"running {uptime:,.0f} s · Ctrl-C stops cleanly"
        if dropped and width < FULL:
            footer = f"outboxes dropped {dropped} messages · {footer}"
        recent = Text(
            "\n".join(events[-8:]) or "no events yet",
            style="yellow",
            no_wrap=True,
            overflow="ellipsis",
        )
        return Group(
            machines,
            Panel(ingest, title="Ingest (embedded broker → SQLite store)"),
            Panel(recent, title="Recent events"),
            Text(footer, style="dim", no_wrap=True, overflow="ellipsis"),
        )
