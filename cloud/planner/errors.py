"""The planner's exception: invalid input, raised before any optimisation starts."""

from __future__ import annotations

from renkei.cloud._exceptions import CloudError

__all__ = ["PlannerInputError"]


class PlannerInputError(CloudError, ValueError):
    """The planner's input is inconsistent or out of range.

    Raised by the input types' constructors (a negative clamp force, ``min > max`` mold
    height, a latitude outside [-90, 90] ...) and by :func:`renkei.cloud.planner.plan_takeover`
    (duplicate ids, a job naming an unknown mold, a negative spare-hours figure ...).
    It is also a :class:`ValueError`, so callers converting ORM rows may catch either.
    """
