"""Which nodes can say, before the graph calls any node, that they would refuse a feedback.

Feedback reaches children before their parent, so a router that refuses a feedback (no
routing for it, a branch it does not have, a reward outside 0..1) would do so after the
models below it were already credited. The built-in bandits check a feedback without
changing anything (:meth:`~infergraph.routers.bandits.BanditRouter.check_feedback`); the
executor runs those checks over the whole path first, so a refused feedback credits nobody.
User classes are not asked: their ``send_feedback`` may do anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.routers.bandits import BanditRouter

__all__ = ["FeedbackCheck", "feedback_check"]

FeedbackCheck = Callable[[float, int | None], Any]
"""``check(reward, routing)``: raises BadRequest for a feedback the node would refuse."""


def feedback_check(client: Any) -> FeedbackCheck | None:
    """The check of a node served in this process by a built-in bandit, else None."""
    if isinstance(client, ComponentDataPlane) and isinstance(client.component.user, BanditRouter):
        return client.component.user.check_feedback
    return None
