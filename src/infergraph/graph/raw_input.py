"""Whether a graph hands the client's request, as it came, to a node's ``*_raw`` method.

The graph refuses a request with a field Seldon's protocol does not have (a misspelt
``ndarray`` would otherwise reach the model as an empty array). A node whose ``*_raw``
method receives the request first is the exception: Seldon's executor passes it the body
as it came, unknown fields and all, so the graph must too. Which nodes receive the request
first follows the executor's order: a node's ``predict`` or ``transform_input``, else its
``route`` and its children, else (a leaf) its ``transform_output``. Only nodes served in
this process can say which methods they have; a node in another process is taken to have
none of the ``*_raw`` ones (hops between processes carry the decoded fields anyway).
"""

from __future__ import annotations

from collections.abc import Iterator

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.graph.plan import PlanNode

__all__ = ["takes_raw_request"]


def _first_calls(node: PlanNode) -> Iterator[tuple[PlanNode, str]]:
    """The (node, endpoint) pairs that receive the graph's request itself."""
    if node.predict:
        yield node, "predict"
        return
    if node.transform_input:
        yield node, "transform_input"
        return
    if node.route:
        yield node, "route"
    for child in node.children:
        yield from _first_calls(child)
    if not node.children and node.transform_output:
        yield node, "transform_output"


def takes_raw_request(root: PlanNode) -> bool:
    """True when some node that receives the request first takes it through ``*_raw``."""
    return any(
        isinstance(node.client, ComponentDataPlane) and node.client.takes_raw(endpoint)
        for node, endpoint in _first_calls(root)
    )
