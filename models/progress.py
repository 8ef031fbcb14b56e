"""Progress bars for training, evaluation, commissioning and reports: the core's
(:mod:`renkei.core.progress`), re-exported where the models' recipes always found them."""

from renkei.core.progress import Advance, progress_enabled, steps, track

__all__ = ["Advance", "progress_enabled", "steps", "track"]
