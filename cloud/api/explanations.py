"""Unmet-volume explanations as the requester may see them, in English and Japanese.

The plan stores the planner's explanation (:mod:`renkei.cloud.planner.explain`) per unmet
entry; :func:`stored_explanation` narrows it to what the partners' *current* sharing views
disclose (:mod:`renkei.cloud.takeover.disclose`), :func:`explanation_public` renders it into
the response schema with a sentence per shortfall, per candidate and in all, in each
language (:mod:`renkei.cloud.planner.wording`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from renkei.cloud.api.schemas.takeovers import (
    CandidatePublic,
    LocalizedText,
    ShortfallPublic,
    UnmetExplanationPublic,
)
from renkei.cloud.capacity.policy import SharedView
from renkei.cloud.planner.explain import Candidate, Explanation
from renkei.cloud.planner.shortfall import Shortfall
from renkei.cloud.planner.wording import (
    Language,
    candidate_text,
    explanation_text,
    shortfall_text,
)
from renkei.cloud.registry import TakeoverRequest
from renkei.cloud.takeover.disclose import disclose

__all__ = ["explanation_public", "stored_explanation"]


def _text(render: Callable[[Language], str]) -> LocalizedText:
    return LocalizedText(en=render("en"), ja=render("ja"))


def _shortfall(sf: Shortfall) -> ShortfallPublic:
    return ShortfallPublic(
        rule=sf.rule,
        quantity=sf.quantity,
        comparison=sf.comparison,
        required=sf.required,
        offered=sf.offered,
        unit=sf.unit,
        items=list(sf.items),
        extras=dict(sf.extras),
        text=_text(lambda lang: shortfall_text(sf, lang)),
    )


def stored_explanation(
    req: TakeoverRequest, u: Mapping[str, Any], views: Mapping[str, SharedView]
) -> Explanation | None:
    """The stored explanation of one unmet entry, narrowed to the current views."""
    data = u.get("explanation")
    if not isinstance(data, dict):
        return None
    return disclose(
        Explanation.from_json(data),
        requester_firm_id=req.firm_id,
        sharing_firm_ids=set(views),
        detail_firm_ids={f for f, v in views.items() if v.machine_detail},
    )


def explanation_public(e: Explanation, names: Mapping[str, str]) -> UnmetExplanationPublic:
    """``e`` as the response schema, with sentences in every language.

    Args:
        names: firm id -> firm name, for the candidates' firms.
    """

    def candidate(c: Candidate) -> CandidatePublic:
        name = names.get(c.firm_id, c.firm_id)
        return CandidatePublic(
            firm_id=c.firm_id,
            firm_name=name,
            site_id=c.site_id,
            machine_id=c.machine_id,
            machine_class=c.machine_class,
            distance_km=round(c.distance_km, 3),
            shortfalls=[_shortfall(sf) for sf in c.shortfalls],
            text=_text(lambda lang: candidate_text(c, lang, firm_name=name)),
        )

    return UnmetExplanationPublic(
        shortfalls=[_shortfall(sf) for sf in e.shortfalls],
        candidates=[candidate(c) for c in e.candidates],
        text=_text(lambda lang: explanation_text(e, lang, firm_names=names)),
    )
