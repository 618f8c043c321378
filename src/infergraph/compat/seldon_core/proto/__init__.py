"""``seldon_core.proto``: Seldon's generated protobuf modules are infergraph's own.

infergraph's ``prediction.proto`` keeps Seldon's package (``seldon.protos``), message
names and field numbers, so the messages a model builds with
``seldon_core.proto.prediction_pb2`` are the very classes infergraph's gRPC server
sends and receives: no conversion happens between the two.
"""

from __future__ import annotations

from infergraph.protocol.proto import prediction_pb2, prediction_pb2_grpc

__all__ = ["prediction_pb2", "prediction_pb2_grpc"]
