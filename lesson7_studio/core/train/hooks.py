"""The fit loop's callback protocol: the :class:`Callback` base class, the event names in the
order the :class:`~.learner.Learner` dispatches them, and the exceptions callbacks raise to
skip work (``CancelBatchException`` ... ``CancelFitException``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .learner import Learner


class CancelBatchException(Exception):
    """Skip the rest of this batch."""


class CancelTrainException(Exception):
    """Skip the rest of this epoch's training phase."""


class CancelValidException(Exception):
    """Skip this epoch's validation."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch."""


class CancelFitException(Exception):
    """End the fit now (early stop, budget). ``reason`` says why."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason




class Callback:
    """Base class: override any event method; ``order`` sorts callbacks (lower runs first)."""

    order: int = 0
    learn: "Learner"

    def state_dict(self) -> dict:
        """Resumable state (tensors / primitives only)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @property
    def name(self) -> str:
        return type(self).__name__


EVENTS = (
    "before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
    "before_backward", "after_backward", "before_step", "after_step", "after_batch",
    "after_cancel_batch", "after_train", "after_cancel_train", "before_validate",
    "after_validate", "after_cancel_validate", "after_epoch", "after_cancel_epoch",
    "after_fit", "after_cancel_fit", "after_interrupt",
)
