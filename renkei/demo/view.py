"""The demo's live terminal view (rich)."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from renkei.demo.runner import DemoRun

__all__ = ["LiveView"]


def _fmt(value: object, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


class LiveView:
    """Renders machines, anomaly scores, events, outbox backlog and ingest rate."""

    def __init__(self, run: DemoRun) -> None:
        self.run = run
        self._rates: deque[tuple[float, int, int]] = deque(maxlen=10)
        self._started = time.monotonic()

    def _ingest_rates(self) -> tuple[float, float]:
        worker = self.run.worker
        if worker is None:
            return 0.0, 0.0
        st = worker.stats()
        now = time.monotonic()
        self._rates.append((now, st.messages, st.field_values))
        t0, m0, f0 = self._rates[0]
        dt = max(now - t0, 1e-9)
        return (st.messages - m0) / dt, (st.field_values - f0) / dt

    def render(self) -> Group:
        machines = Table(title="Machines (gateway → MQTT → ingest → store)", expand=True)
        for col in (
            "gateway",
            "machine",
            "source",
            "rows",
            "state",
            "anomaly score",
            "threshold",
            "anomalies",
            "last event",
            "outbox backlog",
            "dropped",
        ):
            machines.add_column(col, overflow="fold")
        events: list[str] = []
        for agent in self.run.agents:
            ob = agent.outbox.stats()
            for m in agent.config.machines:
                mst = agent.stats.machines.get(m.id, {})
                anomalous = bool(mst.get("anomaly"))
                state = (
                    Text("ANOMALY", style="bold red")
                    if anomalous
                    else Text("normal", style="green")
                )
                pending = mst.get("baseline_pending")
                if isinstance(pending, int) and pending > 0:
                    state = Text(f"baseline ({pending} rows to go)", style="yellow")
                if mst.get("finished"):
                    state = Text("finished", style="dim")
                machines.add_row(
                    agent.config.gateway_id,
                    m.id,
                    str(mst.get("source", m.source.type)),
                    _fmt(mst.get("rows")),
                    state,
                    _fmt(mst.get("score")),
                    _fmt(mst.get("threshold")),
                    _fmt(mst.get("anomalies")),
                    _fmt(mst.get("last_event")),
                    str(ob.backlog_msgs),
                    str(ob.dropped_total),
                )
                for e in mst.get("events", []) or []:  # type: ignore[union-attr]
                    events.append(f"{m.id}: {e}")
        msg_rate, fv_rate = self._ingest_rates()
        worker = self.run.worker
        ingest = Table.grid(padding=(0, 2))
        if worker is not None:
            st = worker.stats()
            ingest.add_row("ingest messages", str(st.messages), f"{msg_rate:,.0f}/s")
            ingest.add_row("field values", f"{st.field_values:,}", f"{fv_rate:,.0f}/s")
            ingest.add_row("points written", f"{st.points:,}", "")
            dl = sum(st.dead_letters.values())
            ingest.add_row(
                "dead letters", str(dl), ", ".join(f"{k}={v}" for k, v in st.dead_letters.items())
            )
        uptime = time.monotonic() - self._started
        footer = Text(f"running {uptime:,.0f} s · Ctrl-C stops cleanly", style="dim")
        recent = Text("\n".join(events[-8:]) or "no events yet", style="yellow")
        return Group(
            machines,
            Panel(ingest, title="Ingest (embedded broker → SQLite store)"),
            Panel(recent, title="Recent events"),
            footer,
        )
