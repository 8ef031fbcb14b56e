"""What of an unmet job's explanation the requester may see.

The planner's :class:`~renkei.cloud.planner.explain.Explanation` names only machines the
requester may plan on (its own and shared ones); this module narrows it to what the
sharing policy discloses (:mod:`renkei.cloud.capacity.policy`): a partner's machine id and
figures (clamp force, tie bars, …) only when its view for the requester has
``machine_detail``; otherwise the candidate keeps its firm, site, distance, capability
class (which sharing opens without detail) and the *job's* required figures, and every
``offered`` figure becomes ``None``. Candidates of firms that no longer share at all are
dropped. Applied when a plan is stored (:func:`disclose`) and again when it is read
(with the views of that moment), so a revoked grant hides what it used to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import replace

from renkei.cloud.planner.explain import Explanation

__all__ = ["disclose", "with_classes"]


def with_classes(e: Explanation, classes: Mapping[str, str]) -> Explanation:
    """``e`` with each candidate's capability class from ``classes`` (by machine id)."""
    return replace(
        e,
        candidates=tuple(
            replace(c, machine_class=classes.get(c.machine_id, c.machine_class))
            if c.machine_id is not None
            else c
            for c in e.candidates
        ),
    )


def disclose(
    e: Explanation,
    *,
    requester_firm_id: str,
    sharing_firm_ids: Set[str],
    detail_firm_ids: Set[str],
) -> Explanation:
    """``e`` as the requester may see it (module docstring).

    Args:
        sharing_firm_ids: firms whose sharing policy currently grants the requester a view.
        detail_firm_ids: of those, the ones whose view includes machine detail.
    """
    out = []
    for c in e.candidates:
        if c.firm_id == requester_firm_id or c.firm_id in detail_firm_ids:
            out.append(c)
        elif c.firm_id in sharing_firm_ids:
            out.append(c.redacted())
    return replace(e, candidates=tuple(out))
