"""infergraph and the libraries our users already have, in one process.

Run with the python of an ecosystem environment (``scripts/ecosystem-venvs.sh``), never
from pytest's own process::

    .venv-eco-tf/bin/python tests/ecosystem/probe.py --order before --libs tritonclient

``--order before`` imports the libraries first and infergraph second; ``after`` the
reverse. Both orders used to fail at the second import, on a duplicate symbol in protobuf's
default descriptor pool (``inference.ServerLiveRequest``, ``tensorflow.DataType``).

Then, in this process, it serves two infergraph components (REST and gRPC, on loopback):
``doubler``, a plain model, and ``caller``, a transformer that calls ``doubler`` with
``tritonclient.grpc`` (and runs TensorFlow or mlserver's codec when present), and calls
them with the clients users have: tritonclient gRPC and HTTP, KServe's REST client,
infergraph's Seldon stub, mlserver's own ``ModelInferRequest`` over a raw channel, and
plain HTTP for Seldon REST. It prints one JSON line per check and exits non-zero when any
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

LIBRARY_MODULES = {
    "tritonclient": ["tritonclient.grpc", "tritonclient.http"],
    "kserve": ["kserve"],
    "tensorflow": ["tensorflow"],
    "mlserver": ["mlserver", "mlserver.grpc.dataplane_pb2", "mlserver.codecs"],
    "seldon_core": ["seldon_core.seldon_client", "seldon_core.proto.prediction_pb2"],
}
INFERGRAPH_MODULES = [
    "infergraph",
    "infergraph.protocol.proto.prediction_pb2",
    "infergraph.protocol.proto.inference_pb2",
    "infergraph.protocol.proto.tensorflow.tensor_pb2",
    "infergraph.transport.grpc.component",
    "infergraph.serving.server",
]

results: list[dict[str, Any]] = []


def check(name: str) -> Callable[[Callable[[], Any]], None]:
    def run(fn: Callable[[], Any]) -> None:
        try:
            detail = fn()
            results.append({"check": name, "ok": True, "detail": detail})
        except Exception as exc:
            results.append({"check": name, "ok": False, "error": repr(exc)})
            traceback.print_exc(file=sys.stderr)

    return run


def held_port(held: list[socket.socket]) -> int:
    """A free port kept bound (not listening, ``SO_REUSEPORT``) in ``held`` while it is served:
    the server binds it beside that socket, and no other test process is handed it meanwhile
    (a port closed and handed on would be shared with one, since both bind ``SO_REUSEPORT``)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    held.append(sock)
    return int(sock.getsockname()[1])


class Doubler:
    def predict(self, X: Any, names: Any) -> Any:
        return np.asarray(X, dtype=np.float64) * 2


class Caller:
    """A transformer that asks another server for its answer over V2 gRPC, as a Triton
    client would (with infergraph's own stub where tritonclient is not in this process),
    and touches TensorFlow when it is installed."""

    def __init__(self, target: str, libs: list[str]) -> None:
        self.target = target
        self.libs = libs

    def load(self) -> None:
        if "tritonclient" in self.libs:
            import tritonclient.grpc as triton

            self.client = triton.InferenceServerClient(self.target)
        else:
            import grpc

            from infergraph.protocol.proto import inference_pb2_grpc

            self.channel = grpc.insecure_channel(self.target)
            self.stub = inference_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def transform_input(self, X: Any, names: Any) -> Any:
        array = np.asarray(X, dtype=np.float64)
        if "tensorflow" in self.libs:
            import tensorflow as tf

            array = tf.constant(array).numpy()
        return self._infer(array) + 1

    def _infer(self, array: np.ndarray) -> np.ndarray:
        if "tritonclient" in self.libs:
            import tritonclient.grpc as triton

            tensor = triton.InferInput("input-0", list(array.shape), "FP64")
            tensor.set_data_from_numpy(array)
            answer = self.client.infer("doubler", [tensor])
            return answer.as_numpy(answer.get_response().outputs[0].name)
        from infergraph.protocol.proto import inference_pb2

        request = inference_pb2.ModelInferRequest(model_name="doubler")
        tensor = request.inputs.add(name="input-0", datatype="FP64", shape=list(array.shape))
        tensor.contents.fp64_contents[:] = array.ravel().tolist()
        answer = self.stub.ModelInfer(request, timeout=30)
        out = answer.outputs[0]
        flat = (
            np.frombuffer(answer.raw_output_contents[0], "<f8")
            if answer.raw_output_contents
            else np.array(out.contents.fp64_contents)
        )
        return flat.reshape(list(out.shape))


@contextmanager
def serve(user: Any, unit_id: str) -> Iterator[tuple[int, int]]:
    """Serve one component on this process's loopback: yield its (REST, gRPC) ports."""
    from infergraph.serving.server import serve_component
    from infergraph.settings import ComponentSettings

    held: list[socket.socket] = []
    http, grpc_port, metrics = held_port(held), held_port(held), held_port(held)
    settings = ComponentSettings(
        unit_id=unit_id, host="127.0.0.1", http_port=http, grpc_port=grpc_port, metrics_port=metrics
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve_component(user, settings, stop=stop),)
    )
    thread.start()
    try:
        _wait_for(http)
        _wait_for(grpc_port)
        yield http, grpc_port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        for sock in held:
            sock.close()


def _wait_for(port: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def run_checks(libs: list[str]) -> None:
    import grpc
    import httpx

    from infergraph.protocol import v2_pb
    from infergraph.protocol.proto import prediction_pb2, prediction_pb2_grpc

    rows = [[1.0, 2.0], [3.0, 4.0]]
    want = (np.array(rows) * 2 + 1).tolist()
    with (
        serve(Doubler(), "doubler") as (d_http, d_grpc),
        serve(Caller(f"127.0.0.1:{d_grpc}", libs), "caller") as (c_http, c_grpc),
    ):

        @check("seldon-rest")
        def _() -> Any:
            body = {"data": {"ndarray": rows}}
            url = f"http://127.0.0.1:{c_http}/transform-input"
            answer = httpx.post(url, json=body, timeout=30).json()
            assert answer.get("data", {}).get("ndarray") == want, answer
            return answer["data"]["ndarray"]

        @check("seldon-grpc")
        def _() -> Any:
            request = prediction_pb2.SeldonMessage()
            request.data.ndarray.extend(rows)
            with grpc.insecure_channel(f"127.0.0.1:{c_grpc}") as channel:
                stub = prediction_pb2_grpc.TransformerStub(channel)
                answer = stub.TransformInput(request, timeout=30)
            got = [list(row.list_value.values) for row in answer.data.ndarray.values]
            got = [[v.number_value for v in row] for row in got]
            assert got == want, got
            return got

        @check("triton-grpc-v2")
        def _() -> Any:
            if "tritonclient" not in libs:
                return "skipped: tritonclient is not in this process"
            import tritonclient.grpc as triton

            client = triton.InferenceServerClient(f"127.0.0.1:{d_grpc}")
            assert client.is_server_live() and client.is_model_ready("doubler")
            tensor = triton.InferInput("input-0", [2, 2], "FP64")
            tensor.set_data_from_numpy(np.array(rows))
            answer = client.infer("doubler", [tensor])
            got = answer.as_numpy(answer.get_response().outputs[0].name).tolist()
            assert got == (np.array(rows) * 2).tolist(), got
            # a tritonclient message is taken where infergraph takes its own
            request = triton.service_pb2.ModelInferRequest(model_name="doubler")
            request.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents[:] = [
                5.0
            ]
            decoded = v2_pb.decode_request(request)
            assert decoded.inputs[0].data.tolist() == [5.0]
            return got

        @check("triton-http-v2")
        def _() -> Any:
            if "tritonclient" not in libs:
                return "skipped: tritonclient is not in this process"
            import tritonclient.http as triton_http

            client = triton_http.InferenceServerClient(f"127.0.0.1:{d_http}")
            tensor = triton_http.InferInput("input-0", [2, 2], "FP64")
            tensor.set_data_from_numpy(np.array(rows), binary_data=True)
            answer = client.infer("doubler", [tensor])
            got = answer.as_numpy(answer.get_response()["outputs"][0]["name"]).tolist()
            assert got == (np.array(rows) * 2).tolist(), got
            return got

        if "kserve" in libs:

            @check("kserve-rest-v2")
            def _() -> Any:
                return asyncio.run(_kserve_rest(d_http, rows))

        if "seldon_core" in libs:

            @check("seldon-client")
            def _() -> Any:
                return _seldon_client(d_grpc, rows)

        if "mlserver" in libs:

            @check("mlserver-message-over-grpc")
            def _() -> Any:
                from mlserver.grpc import dataplane_pb2

                request = dataplane_pb2.ModelInferRequest(model_name="doubler")
                tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[2, 2])
                tensor.contents.fp64_contents[:] = [1.0, 2.0, 3.0, 4.0]
                with grpc.insecure_channel(f"127.0.0.1:{d_grpc}") as channel:
                    infer = channel.unary_unary(
                        "/inference.GRPCInferenceService/ModelInfer",
                        request_serializer=dataplane_pb2.ModelInferRequest.SerializeToString,
                        response_deserializer=dataplane_pb2.ModelInferResponse.FromString,
                    )
                    answer = infer(request, timeout=30)
                decoded = v2_pb.decode_response(answer)  # mlserver's message, read by us
                got = decoded.outputs[0].data.tolist()
                assert got == (np.array(rows) * 2).tolist(), got
                return got


def _seldon_client(grpc_port: int, rows: list[list[float]]) -> Any:
    """seldon-core's SeldonClient over gRPC, beside infergraph. (Its REST path parses answers
    with seldon-core's own protobuf-3 modules, whose map fields protobuf 4 and later no
    longer read: that needs seldon-core's own pins, tested in tests/interop/.)"""
    import seldon_core.seldon_client as seldon_client

    client = seldon_client.SeldonClient(microservice_endpoint=f"127.0.0.1:{grpc_port}")
    answer = client.microservice(data=np.array(rows), transport="grpc", method="predict")
    assert answer.success and answer.response is not None, answer.msg
    values = list(answer.response.data.tensor.values)  # seldon-core's own SeldonMessage
    assert values == (np.array(rows) * 2).ravel().tolist(), values
    return values


async def _kserve_rest(port: int, rows: list[list[float]]) -> Any:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    tensor = InferInput("input-0", [2, 2], "FP64")
    tensor.set_data_from_numpy(np.array(rows), binary_data=False)
    try:
        answer = await client.infer(
            f"http://127.0.0.1:{port}", InferRequest("doubler", [tensor]), model_name="doubler"
        )
    finally:
        await client.close()
    got = answer.outputs[0].as_numpy().tolist()
    assert got == (np.array(rows) * 2).tolist(), got
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order", choices=["before", "after"], required=True)
    parser.add_argument(
        "--libs", required=True, help="comma-separated: " + ",".join(LIBRARY_MODULES)
    )
    args = parser.parse_args()
    libs = args.libs.split(",")
    theirs = [name for lib in libs for name in LIBRARY_MODULES[lib]]
    order = theirs + INFERGRAPH_MODULES if args.order == "before" else INFERGRAPH_MODULES + theirs

    @check("imports")
    def _() -> Any:
        for name in order:
            importlib.import_module(name)
        return order

    if results[-1]["ok"]:
        run_checks(libs)
    for result in results:
        print(json.dumps(result, default=str))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
