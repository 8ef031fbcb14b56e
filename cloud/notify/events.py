"""Takeover events that notify firms: work offered to a partner, an answer to the owner.

Called by :mod:`renkei.cloud.takeover.service` (new proposed assignments of a plan run)
and by the assignment answer endpoint; both only :func:`~renkei.cloud.notify.dispatch.enqueue`
(delivery happens after the commit). :func:`_should_notify` is the single check point of
whether a takeover contacts anyone (a drill must not).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from renkei.cloud.notify.dispatch import Notification, enqueue
from renkei.cloud.notify.texts import OfferLine, answer_texts, offer_texts
from renkei.cloud.registry import (
    AssignmentStatus,
    Firm,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
)

__all__ = ["answered", "offered"]


def _should_notify(request: TakeoverRequest) -> bool:
    """Whether ``request`` may contact partners and owners: not when it is a drill.

    The one place to change if a takeover gains other silent modes.
    """
    return not request.drill


def _name(session: Session, firm_id: str) -> str:
    firm = session.get(Firm, firm_id)
    return firm.name if firm is not None else firm_id


def _jobs(request: TakeoverRequest) -> dict[str, TakeoverJob]:
    return {j.job_id: j for j in request.jobs}


def offered(
    session: Session, request: TakeoverRequest, assignments: Sequence[TakeoverAssignment]
) -> None:
    """Tell each partner firm (not the requester itself) of its new proposed assignments."""
    if not _should_notify(request):
        return
    jobs = _jobs(request)
    by_partner: dict[str, list[TakeoverAssignment]] = defaultdict(list)
    for a in assignments:
        if a.status is AssignmentStatus.PROPOSED and a.partner_firm_id != request.firm_id:
            by_partner[a.partner_firm_id].append(a)
    if not by_partner:
        return
    requester = _name(session, request.firm_id)
    for partner, items in sorted(by_partner.items()):
        lines = [
            OfferLine(
                part_id=jobs[a.job_id].part_id if a.job_id in jobs else a.job_id,
                parts=a.parts,
                hours=a.hours,
                machine_id=a.machine_id,
            )
            for a in items
        ]
        enqueue(
            session,
            Notification(
                firm_id=partner,
                event="offer",
                reference=f"takeover {request.id} revision {request.revision}",
                texts=offer_texts(
                    requester=requester,
                    request_id=request.id,
                    offers=lines,
                    window=(request.window_start, request.window_end),
                ),
            ),
        )


def answered(session: Session, request: TakeoverRequest, assignment: TakeoverAssignment) -> None:
    """Tell the requesting firm that a partner accepted or declined ``assignment``."""
    if not _should_notify(request) or assignment.partner_firm_id == request.firm_id:
        return
    accepted = assignment.status is AssignmentStatus.ACCEPTED
    job = _jobs(request).get(assignment.job_id)
    enqueue(
        session,
        Notification(
            firm_id=request.firm_id,
            event="accepted" if accepted else "declined",
            reference=f"takeover {request.id} assignment {assignment.id}",
            texts=answer_texts(
                partner=_name(session, assignment.partner_firm_id),
                request_id=request.id,
                accepted=accepted,
                part_id=job.part_id if job is not None else assignment.job_id,
                parts=assignment.parts,
                machine_id=assignment.machine_id,
                note=assignment.note,
            ),
        ),
    )
