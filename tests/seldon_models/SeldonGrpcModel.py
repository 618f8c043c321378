"""A MODEL with predict_raw building its gRPC answer from seldon_core.proto.prediction_pb2
by hand; REST requests (JSON dicts) take the same path through the proto messages."""

import numpy as np
from seldon_core.proto import prediction_pb2
from seldon_core.utils import json_to_seldon_message, seldon_message_to_json


class SeldonGrpcModel:
    def predict_raw(self, request):
        if isinstance(request, prediction_pb2.SeldonMessage):
            return self._answer(request)
        return seldon_message_to_json(self._answer(json_to_seldon_message(request)))

    def _answer(self, request):
        which = request.data.WhichOneof("data_oneof")
        if which == "tensor":
            shape = list(request.data.tensor.shape)
            values = np.array(request.data.tensor.values).reshape(shape)
        else:
            values = np.array(
                [
                    [v.number_value for v in row.list_value.values]
                    for row in request.data.ndarray.values
                ]
            )
        out = values * 3
        tensor = prediction_pb2.Tensor(shape=list(out.shape), values=out.ravel().tolist())
        meta = prediction_pb2.Meta(puid=request.meta.puid)
        meta.tags["via"].string_value = "proto"
        return prediction_pb2.SeldonMessage(
            data=prediction_pb2.DefaultData(names=["p", "q"], tensor=tensor), meta=meta
        )
