"""A MODEL with predict_raw written with seldon_core.utils helpers, returning custom
metrics named with the seldon_core.metrics constants."""

import numpy as np
from seldon_core.metrics import COUNTER, GAUGE, TIMER
from seldon_core.proto import prediction_pb2
from seldon_core.utils import (
    construct_response,
    construct_response_json,
    extract_request_parts,
    extract_request_parts_json,
    getenv_as_bool,
)


class SeldonUtilsModel:
    def __init__(self):
        self.negate = getenv_as_bool("UTILS_MODEL_NEGATE", default=False)

    def predict_raw(self, request):
        if isinstance(request, prediction_pb2.SeldonMessage):
            features, meta, _, _ = extract_request_parts(request)
            return construct_response(
                self, False, request, self._run(features), meta, self._metrics(features)
            )
        features, meta, _, _ = extract_request_parts_json(request)
        return construct_response_json(
            self,
            False,
            request,
            self._run(features),
            meta,
            self._metrics(features),
            runtime_tags={"helpers": "utils"},
        )

    def _run(self, features):
        out = np.asarray(features, dtype=float) + 100
        return -out if self.negate else out

    def _metrics(self, features):
        return [
            {"type": COUNTER, "key": "utils_model_requests", "value": 1},
            {"type": GAUGE, "key": "utils_model_width", "value": int(np.shape(features)[-1])},
            {"type": TIMER, "key": "utils_model_time", "value": 2.5},
        ]

    def tags(self):
        return {"static": "yes"}
