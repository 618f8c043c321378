"""The floor of a Python gRPC server: a server on uvloop answering ModelInfer with a fixed,
pre-serialised response, for ``bench/v2.py``'s ``bare-grpc-aio`` and ``bare-grpc-native``
reference targets.

No request is parsed and no model runs: the answer (the iris model's probabilities for the
benchmark's row, computed once at start-up) is returned as bytes. Its CPU per request is
what the server costs by itself, as ``bare_asgi.py`` is for REST: ``aio`` is grpcio's
asyncio server (what MLServer and KServe serve gRPC with), ``native`` infergraph's own
HTTP/2 server (``infergraph.wire.grpc.server``).

Usage: ``.venv/bin/python bench/bare_grpc.py PORT [aio|native]`` (binds 127.0.0.1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))


def answer() -> bytes:
    from iris_data import SAMPLE_ROW, load_model

    from infergraph.protocol.proto import inference_pb2 as pb

    proba = load_model().predict_proba([SAMPLE_ROW])
    response = pb.ModelInferResponse(model_name="iris")
    out = response.outputs.add(name="output-0", datatype="FP64", shape=list(proba.shape))
    out.contents.fp64_contents.extend(proba.ravel().tolist())
    return response.SerializeToString()


async def serve(port: int, kind: str) -> None:
    body = answer()

    async def model_infer(request: bytes, context: Any) -> bytes:
        return body

    server: Any
    if kind == "native":
        from infergraph.status import grpc_status
        from infergraph.wire.grpc.server import NativeGrpcServer

        server = NativeGrpcServer(grpc_status)
    else:
        server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer)},
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    import uvloop

    uvloop.run(serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "aio"))


if __name__ == "__main__":
    main()
