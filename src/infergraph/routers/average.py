"""``AVERAGE_COMBINER``: the element-wise mean of the children's outputs.

Seldon's Go executor accepts ``AVERAGE_COMBINER`` but silently returns the first child's
response; its Java engine really averaged. Users had it in their YAML to build ensembles,
so infergraph implements the Java behaviour (same checks, same error wording) and says so
in the docs, rather than reproducing the silent fallback.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import BadRequest
from infergraph.sdk import Combiner

__all__ = ["AverageCombiner"]


class AverageCombiner(Combiner):
    """Average 2-D numeric child outputs of identical shape, element by element.

    The result is a float array; its column names are the first child's (see
    :meth:`output_names`), as in Seldon's Java engine, which took the first child's meta.
    """

    def aggregate(self, features_list: list[Any], feature_names_list: list[list[str]]) -> Any:
        if len(features_list) == 0:
            raise BadRequest("Combiner received no inputs")
        arrays = [_as_matrix(i, x) for i, x in enumerate(features_list)]
        first = arrays[0].shape
        for i, array in enumerate(arrays[1:], start=1):
            if array.shape != first:
                raise BadRequest(
                    f"Expected batch length {first[0]} with {first[1]} columns like child 0 "
                    f"{first} but child {i} has shape {array.shape}"
                )
        return np.mean(np.stack(arrays), axis=0, dtype=np.float64)

    @staticmethod
    def output_names(feature_names_list: list[list[str]]) -> list[str]:
        """The names of the combined output: the first child's."""
        return list(feature_names_list[0]) if feature_names_list else []


def _as_matrix(child: int, data: Any) -> np.ndarray:
    try:
        array = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise BadRequest(f"Combiner cannot extract data shape: child {child}: {exc}") from exc
    if array.ndim != 2:
        raise BadRequest(
            "Combiner received data that is not 2 dimensional: "
            f"child {child} has shape {array.shape}"
        )
    kind = array.dtype.kind
    if kind not in "biuf":
        raise BadRequest(
            "Combiner received data that is not numeric: "
            f"child {child} has values of type {array.dtype}"
        )
    return array
