"""Call a running Seldon microservice with seldon-core's own ``SeldonClient``.

Run it with the seldon-core virtualenv (``.venv-seldon/bin/python``), never with
the project's: it imports ``seldon_core``. It talks to the server in
*microservice mode* (``SeldonClient(microservice_endpoint=...)``) over REST and
gRPC and prints one JSON object per call on stdout::

    {"case": "rest-predict-ndarray", "transport": "rest", "method": "predict",
     "via": "SeldonClient.microservice", "success": true, "msg": "",
     "response": {...MessageToDict of the answer...},
     "decoded": ..., "decoded_by": "seldon_core.utils.get_data_from_proto",
     "error": null, "skip": null}

``response`` is the answer as SeldonClient hands it back (a SeldonMessage for
both transports: the REST helper parses the JSON body into one) turned into a
dict with ``MessageToDict``. ``decoded`` is the payload as seldon-core's own
utilities read it (a nested list for ``data``, base64 text for ``binData``).
``error`` holds an exception the client raised; ``skip`` a reason a case cannot
run with this client (for instance tftensor without TensorFlow).

The first line has ``"case": "_versions"`` and the versions of seldon-core and
its protobuf and grpcio.

The expected numbers live in ``test_seldon_client.py``; this script only
reports what the client got.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np

# The model the test serves maps these inputs to known outputs.
X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
X2 = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
STR_DATA = "hello seldon"
BIN_DATA = b"\x00\x01binary\xff"
JSON_DATA = {"label": "x", "values": [1, 2, 3]}
REWARD_REST = 0.25
REWARD_GRPC = 0.75

TF_DTYPE_DOUBLE = 2  # tensorflow.DataType.DT_DOUBLE


def _payload(message: Any) -> tuple[Any, str | None]:
    """Decode a SeldonMessage's payload the way a seldon-core user would."""
    from seldon_core.utils import get_data_from_proto

    if message is None:
        return None, None
    which = message.WhichOneof("data_oneof")
    if which is None:
        return None, None
    if which == "data" and message.data.WhichOneof("data_oneof") == "tftensor":
        # seldon_core.utils needs TensorFlow for tftensor: decode by hand.
        return _tftensor_to_list(message.data.tftensor), "probe (tftensor without TensorFlow)"
    value = get_data_from_proto(message)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, bytes | bytearray):
        value = base64.b64encode(bytes(value)).decode()
    return value, "seldon_core.utils.get_data_from_proto"


def _tftensor_to_list(tensor: Any) -> list[Any]:
    shape = [int(d.size) for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        dtypes = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}
        array = np.frombuffer(tensor.tensor_content, dtype=dtypes[tensor.dtype])
    else:
        values = (
            list(tensor.double_val)
            or list(tensor.float_val)
            or list(tensor.int64_val)
            or list(tensor.int_val)
        )
        array = np.array(values, dtype=np.float64)
    return array.reshape(shape).tolist()


def _tftensor(array: np.ndarray) -> Any:
    """A TensorProto built from seldon-core's bundled protos (no TensorFlow)."""
    from seldon_core.proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in array.shape]
    )
    return tensor_pb2.TensorProto(
        dtype=TF_DTYPE_DOUBLE,
        tensor_shape=shape,
        double_val=array.astype(np.float64).ravel().tolist(),
    )


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


def _run(
    case: str,
    transport: str,
    method: str,
    call: Callable[[], Any],
    via: str = "SeldonClient.microservice",
) -> Any:
    """Run one call and print its record; return the client's result object."""
    from google.protobuf.json_format import MessageToDict

    record: dict[str, Any] = {
        "case": case,
        "transport": transport,
        "method": method,
        "via": via,
        "success": False,
        "msg": "",
        "response": None,
        "decoded": None,
        "decoded_by": None,
        "error": None,
        "skip": None,
    }
    result = None
    try:
        result = call()
    except NameError as exc:
        if "'tf'" in str(exc):
            record["skip"] = (
                "SeldonClient builds tftensor payloads with tf.make_tensor_proto, "
                "and TensorFlow is not installed in .venv-seldon"
            )
        record["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        record["error"] = "".join(traceback.format_exception_only(exc)).strip()
    if result is not None:
        record["success"] = bool(result.success)
        record["msg"] = result.msg
        if result.response is not None:
            record["response"] = MessageToDict(result.response)
            record["decoded"], record["decoded_by"] = _payload(result.response)
    _emit(record)
    return result


class _Result:
    """SeldonClient-like result for calls made without SeldonClient."""

    def __init__(self, response: Any, success: bool, msg: str) -> None:
        self.response = response
        self.success = success
        self.msg = msg


def _rest_raw(endpoint: str, method: str, request: Any) -> _Result:
    """POST like SeldonClient's REST microservice helper: ``json`` as a form field."""
    import requests
    from seldon_core.utils import json_to_seldon_message, seldon_message_to_json

    raw = requests.post(
        f"http://{endpoint}/{method}",
        data={"json": json.dumps(seldon_message_to_json(request))},
        timeout=30,
    )
    return _Result(json_to_seldon_message(raw.json()), raw.status_code == 200, raw.reason)


def _grpc_raw(endpoint: str, request: Any) -> _Result:
    import grpc
    from seldon_core.proto import prediction_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        response = prediction_pb2_grpc.ModelStub(channel).Predict(request, timeout=30)
    return _Result(response, True, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args(argv)

    from seldon_core.proto import prediction_pb2
    from seldon_core.seldon_client import SeldonClient

    _emit(
        {
            "case": "_versions",
            "seldon-core": version("seldon-core"),
            "protobuf": version("protobuf"),
            "grpcio": version("grpcio"),
            "numpy": version("numpy"),
            "python": sys.version.split()[0],
        }
    )

    rest_ep = f"{args.host}:{args.http_port}"
    grpc_ep = f"{args.host}:{args.grpc_port}"
    rest = SeldonClient(microservice_endpoint=rest_ep, transport="rest")
    grpc_ = SeldonClient(microservice_endpoint=grpc_ep, transport="grpc")
    clients = {"rest": rest, "grpc": grpc_}

    # predict with numeric payloads
    for transport, sc in clients.items():
        for payload_type in ("ndarray", "tensor", "tftensor"):
            _run(
                f"{transport}-predict-{payload_type}",
                transport,
                "predict",
                lambda sc=sc, t=transport, p=payload_type: sc.microservice(
                    method="predict", transport=t, data=X, payload_type=p
                ),
            )

    # tftensor without TensorFlow: the same SeldonMessage, built from the
    # protos seldon-core ships, sent the way SeldonClient would send it.
    tf_request = prediction_pb2.SeldonMessage(
        data=prediction_pb2.DefaultData(tftensor=_tftensor(X))
    )
    _run(
        "rest-predict-tftensor-proto",
        "rest",
        "predict",
        lambda: _rest_raw(rest_ep, "predict", tf_request),
        via="seldon_core protos + form-encoded POST",
    )
    _run(
        "grpc-predict-tftensor-proto",
        "grpc",
        "predict",
        lambda: _grpc_raw(grpc_ep, tf_request),
        via="seldon_core.proto ModelStub",
    )

    # names travel with the data
    for transport, sc in clients.items():
        _run(
            f"{transport}-predict-names",
            transport,
            "predict",
            lambda sc=sc, t=transport: sc.microservice(
                method="predict", transport=t, data=X, payload_type="ndarray", names=["p", "q", "r"]
            ),
        )

    # non-numeric payloads
    for transport, sc in clients.items():
        _run(
            f"{transport}-predict-strdata",
            transport,
            "predict",
            lambda sc=sc, t=transport: sc.microservice(
                method="predict", transport=t, str_data=STR_DATA
            ),
        )
        _run(
            f"{transport}-predict-bindata",
            transport,
            "predict",
            lambda sc=sc, t=transport: sc.microservice(
                method="predict", transport=t, bin_data=BIN_DATA
            ),
        )
        _run(
            f"{transport}-predict-jsondata",
            transport,
            "predict",
            lambda sc=sc, t=transport: sc.microservice(
                method="predict", transport=t, json_data=JSON_DATA
            ),
        )

    # the other microservice methods
    for transport, sc in clients.items():
        payload_type = "ndarray" if transport == "rest" else "tensor"
        for method in ("transform-input", "transform-output", "route"):
            _run(
                f"{transport}-{method}",
                transport,
                method,
                lambda sc=sc, t=transport, m=method, p=payload_type: sc.microservice(
                    method=m, transport=t, data=X, payload_type=p
                ),
            )
        _run(
            f"{transport}-aggregate",
            transport,
            "aggregate",
            lambda sc=sc, t=transport, p=payload_type: sc.microservice(
                method="aggregate", transport=t, datas=[X, X2], payload_type=p
            ),
        )

    # send-feedback, built from a real predict round trip
    for transport, sc in clients.items():
        reward = REWARD_REST if transport == "rest" else REWARD_GRPC
        first = sc.microservice(
            method="predict", transport=transport, data=X, payload_type="tensor"
        )
        _run(
            f"{transport}-send-feedback",
            transport,
            "send-feedback",
            lambda sc=sc, t=transport, r=reward, first=first: sc.microservice_feedback(
                prediction_request=first.request,
                prediction_response=first.response,
                reward=r,
                transport=t,
            ),
            via="SeldonClient.microservice_feedback",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
