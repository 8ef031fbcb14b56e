"""One RUL model of a machine, from its rows to its ``rul`` or ``mold`` rows.

A :class:`RulSink` holds a :class:`~renkei.edge.model.rul.RulRunner` (the model and its
streaming inputs), where its rows go (a ``mold`` or ``rul`` output buffer, in practice a
:class:`renkei.edge.transport.packing.RowBuffer`; this module only needs its ``add``) and,
for a mold model, the :class:`~renkei.edge.model.rul.MoldTracker`. :func:`rul_sink` builds
one from a machine's ``models:`` entry (a :class:`renkei.edge.config.RulModelConfig`, seen
through :class:`RulSettings`: the model layer does not import the gateway config).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from renkei.core.wire import MachineKind
from renkei.edge.model.inference import AnomalyModel, ModelInputError
from renkei.edge.model.rul import MoldTracker, RulPlanError, RulRunner, plan_inputs, rul_fields

__all__ = ["MoldSettings", "RowSink", "RulSettings", "RulSink", "rul_sink"]


class RowSink(Protocol):
    """Where a sink's rows go (e.g. :class:`renkei.edge.transport.packing.RowBuffer`)."""

    def add(self, t_ms: int, values: Mapping[str, float]) -> None:
        """Append one row at ``t_ms`` (UTC epoch ms)."""


class MoldSettings(Protocol):
    """The mold a remaining-shots model watches (:class:`renkei.edge.config.MoldConfig`)."""

    @property
    def id(self) -> str:
        """Mold id (tag ``mold``)."""

    @property
    def maintenance_interval_shots(self) -> int:
        """Shots between two planned maintenances."""

    @property
    def shot_count_at_maintenance(self) -> int:
        """The shot counter at the last maintenance."""

    @property
    def ideal_cycle_time_s(self) -> float | None:
        """Nominal cycle time, s."""


class RulSettings(Protocol):
    """A machine's ``models:`` entry (:class:`renkei.edge.config.RulModelConfig`)."""

    @property
    def baseline_rows(self) -> int | None:
        """Rows of the history baseline when the manifest does not state them."""

    @property
    def component(self) -> str | None:
        """``component`` tag of the ``rul`` rows, if any."""

    @property
    def mold(self) -> MoldSettings | None:
        """The mold whose ``mold`` rows the model feeds (instead of ``rul`` rows)."""


B = TypeVar("B", bound=RowSink)


@dataclass(slots=True)
class RulSink(Generic[B]):
    """One RUL model of a machine: its runner, its output buffer (kind ``mold`` or ``rul``)
    and, for a mold model, the mold tracker."""

    runner: RulRunner
    buffer: B
    on_shots: bool
    mold: MoldTracker | None = None

    def push(self, pub_ms: int, row: Mapping[str, float]) -> None:
        """Feed one row (published time ``pub_ms``, UTC epoch ms); buffer what it completes."""
        for out in self.runner.push(pub_ms, row):
            fields = self.mold.fields(out) if self.mold is not None else rul_fields(out)
            if fields:
                self.buffer.add(out.t_ms, fields)


def rul_sink(
    model: AnomalyModel,
    settings: RulSettings,
    *,
    machine_id: str,
    check: Callable[[AnomalyModel], None],
    buffer: Callable[[MachineKind, dict[str, str]], B],
) -> RulSink[B]:
    """The sink of one RUL model of machine ``machine_id``.

    Args:
        model: the RUL model (manifest ``task: rul``).
        settings: its ``models:`` entry (baseline rows, ``component`` tag, mold).
        machine_id: the machine's id (for errors).
        check: raises :class:`ModelInputError` if a window model does not fit the machine
            (:meth:`renkei.edge.pipeline.MachinePipeline.check_model`); not called for shot
            models.
        buffer: makes the output buffer of a kind (``mold`` or ``rul``) and tags.

    Raises:
        ModelInputError: the model's inputs cannot be computed, it does not fit the machine,
            or it is a mold model that does not score shots.
    """
    try:
        plan = plan_inputs(model.manifest, baseline_rows=settings.baseline_rows)
    except RulPlanError as exc:
        raise ModelInputError(f"machine {machine_id}: {exc}") from None
    on_shots = model.manifest.feature_kind == "shot"
    if not on_shots:
        check(model)
    cap = float(model.manifest.rul_cap or 0.0)
    mold = settings.mold
    if mold is not None:
        if not on_shots:
            raise ModelInputError(f"machine {machine_id}: mold model {model.name} must score shots")
        tracker = MoldTracker(
            rul_cap=cap,
            maintenance_interval_shots=mold.maintenance_interval_shots,
            shot_count_at_maintenance=mold.shot_count_at_maintenance,
            ideal_cycle_time_s=mold.ideal_cycle_time_s,
        )
        out = buffer(MachineKind.MOLD, {"mold": mold.id})
        return RulSink(RulRunner(model, plan), out, on_shots, tracker)
    tags = {"model": model.name}
    if settings.component is not None:
        tags["component"] = settings.component
    return RulSink(RulRunner(model, plan), buffer(MachineKind.RUL, tags), on_shots)
