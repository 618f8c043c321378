"""A ``*_raw`` method called inside a graph gets the plain JSON dict Seldon's parser makes:
lists and numbers, never numpy arrays, whatever the previous node returned."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from infergraph.components.component import Component
from infergraph.protocol.message import DataKind, Feedback, Message


class JsonOnly:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def predict_raw(self, request: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(json.loads(json.dumps(request)))  # fails on numpy values
        return {"data": {"ndarray": request["data"]["ndarray"]}}

    def send_feedback_rest(self, feedback: dict[str, Any]) -> None:  # deprecated Seldon form
        self.seen.append(json.loads(json.dumps(feedback)))


async def test_predict_raw_in_a_graph_gets_plain_json() -> None:
    user = JsonOnly()
    component = Component(user, name="m")
    await component.load()
    upstream = Message(DataKind.NDARRAY, np.array([[1, 2], [3, 4]]), ["a", "b"])
    answer = await component.predict(upstream, "json")
    assert user.seen[0]["data"]["ndarray"] == [[1, 2], [3, 4]]
    assert isinstance(user.seen[0]["data"]["ndarray"][0][0], int)
    assert answer.raw == {"data": {"ndarray": [[1, 2], [3, 4]]}}


async def test_send_feedback_rest_in_a_graph_gets_plain_json() -> None:
    user = JsonOnly()
    component = Component(user, name="m")
    await component.load()
    request = Message(DataKind.TENSOR, np.array([[0.5, 1.5]]), [])
    await component.send_feedback(Feedback(request, None, 1.0, None), "json")
    assert user.seen[0]["request"]["data"]["tensor"]["values"] == [0.5, 1.5]
    assert user.seen[0]["reward"] == 1.0
