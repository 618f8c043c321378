"""What the fuzz targets send, and the component that answers it.

Valid seeds (Seldon messages, V2 requests, binary tensors, protobuf messages), the builders
that mutate them into one case each (:func:`rest_case`, :func:`grpc_case`, reproducible from
seed, target and index), and :func:`problem`, the rule every REST answer must follow.
"""

from __future__ import annotations

import base64
import gzip
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from infergraph.protocol.proto import inference_pb2, prediction_pb2
from infergraph.protocol.tftensor import array_to_tf_json

from .mutate import case_rng, dump_json, mutate_bytes, mutate_value

NAME = "Component"
"""The component's name, and so its V2 model's."""


def _sendable(X: Any) -> Any:
    """``X``, but an array of bytes (a DT_STRING tftensor) as text: a protobuf ndarray cannot
    carry bytes (a clear 500, tests/protocol/test_listvalue.py), and a model that returns them
    errs."""
    if isinstance(X, np.ndarray) and X.dtype == object and X.size:
        return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in X.ravel()], dtype=object).reshape(X.shape)  # fmt: skip
    return X


class Component:
    """Answers every Seldon method with what it was given; it never fails by itself, so any
    5xx is infergraph's."""

    def predict(self, X: Any, features_names: Any) -> Any:
        return _sendable(X)

    def transform_input(self, X: Any, features_names: Any) -> Any:
        return _sendable(X)

    def transform_output(self, X: Any, features_names: Any) -> Any:
        return _sendable(X)

    def route(self, X: Any, features_names: Any) -> int:
        return 0

    def aggregate(self, Xs: Any, features_names: Any) -> Any:
        return Xs[0] if len(Xs) else []

    def send_feedback(self, X: Any, features_names: Any, reward: Any, truth: Any) -> None:
        return None


# ---------------------------------------------------------------- valid seeds

_ARRAYS = [
    np.array([[1.5, 2.0]], dtype=np.float32),
    np.array([1, 2, 3], dtype=np.int64),
    np.array([[True, False]]),
    np.array([[1 + 2j]], dtype=np.complex64),
    np.array([0.5, 1.0], dtype=np.float16),
    np.array([7], dtype=np.uint8),
]
SELDON: list[dict[str, Any]] = [
    {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0], [3.0, 4.0]]}},
    {"data": {"ndarray": ["text", "more"]}},
    {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}},
    *({"data": {"tftensor": array_to_tf_json(array)}} for array in _ARRAYS),
    {"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]},
                           "floatVal": [1.5, 2.5]}}},
    {"data": {"tftensor": {"dtype": "DT_STRING", "tensorShape": {"dim": [{"size": "1"}]},
                           "stringVal": ["aGk="]}}},
    {"strData": "hello"},
    {"binData": base64.b64encode(b"\x00\x01bytes").decode()},
    {"jsonData": {"rows": [1, 2], "name": "x"}},
    {"meta": {"puid": "p1", "tags": {"t": 1}, "routing": {"r": 0}, "requestPath": {"m": "img"},
              "metrics": [{"key": "k", "type": "COUNTER", "value": 1}]},
     "data": {"ndarray": [[1]]}},
    {"status": {"code": 200, "info": "ok", "reason": "", "status": "SUCCESS"},
     "data": {"ndarray": [[1]]}},
]  # fmt: skip
SELDON_PATHS = [
    "/api/v1.0/predictions",
    "/predict",
    "/transform-input",
    "/transform-output",
    "/route",
    "/aggregate",
    "/api/v1.0/feedback",
]
V2: list[dict[str, Any]] = [
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]},
    {"id": "r1", "inputs": [{"name": "x", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]}],
     "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}]},
    {"inputs": [{"name": "b", "datatype": "BOOL", "shape": [2], "data": [True, False]}],
     "parameters": {"binary_data_output": False}},
    {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hi"],
                 "parameters": {"content_type": "str"}}]},
    {"inputs": [{"name": "u", "datatype": "UINT8", "shape": [1, 2], "data": [1, 255]},
                {"name": "h", "datatype": "FP16", "shape": [1], "data": [0.5]}]},
]  # fmt: skip
V2_PATHS = [f"/v2/models/{NAME}/infer", "/v2/models/infer", f"/v2/models/{NAME}/versions/1/infer"]


@dataclass(frozen=True)
class Paths:
    """Where a target takes Seldon and V2 requests."""

    name: str
    seldon: Sequence[str]
    v2: Sequence[str]


COMPONENT_PATHS = Paths("component", SELDON_PATHS, V2_PATHS)
_BINARY = [
    ("FP32", [2], np.array([1.5, 2.5], dtype="<f4").tobytes()),
    ("INT32", [1, 2], np.array([[1, -1]], dtype="<i4").tobytes()),
    ("BOOL", [3], b"\x01\x00\x01"),
    ("BYTES", [2], struct.pack("<I", 2) + b"hi" + struct.pack("<I", 0)),
    ("FP64", [0], b""),
]


# ---------------------------------------------------------------- cases


Case = tuple[str, list[tuple[bytes, bytes]], bytes]
"""(path, headers, body) of one POST."""


def _seldon_object(rng: random.Random, path: str) -> Any:
    message = rng.choice(SELDON)
    if path.endswith("feedback"):
        return {"request": message, "response": rng.choice(SELDON), "reward": 1.0,
                "truth": rng.choice(SELDON)}  # fmt: skip
    if path == "/aggregate":
        pair = [message, rng.choice(SELDON)]
        return {"seldonMessages": pair} if rng.random() < 0.5 else pair
    return message


def _seldon_case(rng: random.Random, paths: Paths) -> Case:
    path = rng.choice(paths.seldon)
    obj = _seldon_object(rng, path)
    body = dump_json(mutate_value(rng, obj) if rng.random() < 0.85 else obj)
    if rng.random() < 0.25:
        body = mutate_bytes(rng, body)
    headers = [(b"content-type", b"application/json")]
    form = rng.random()
    if form < 0.05:
        headers = [(b"content-type", b"application/x-www-form-urlencoded")]
        body = b"json=" + quote(body.decode("utf-8", "replace")).encode()
    elif form < 0.12:
        body, ctype = _multipart(rng, body)
        headers = [(b"content-type", ctype)]
    elif form < 0.15:
        headers = [(b"content-type", rng.choice([b"text/plain", b"", b"\xff/\xfe"]))]
    return path, headers, body


def _multipart(rng: random.Random, payload: bytes) -> tuple[bytes, bytes]:
    boundary = rng.choice(["b0undary", "x", "é", "--"])
    name = rng.choice(["json", "strData", "binData", "", 'json"'])
    filename = rng.choice(["", '; filename="f.bin"'])
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    if rng.random() < 0.3:
        part = mutate_bytes(rng, part)
    announced = rng.choice([boundary, boundary, "other", ""])
    return part, f"multipart/form-data; boundary={announced}".encode()


def _v2_json_case(rng: random.Random, paths: Paths) -> Case:
    obj = rng.choice(V2)
    body = dump_json(mutate_value(rng, obj) if rng.random() < 0.85 else obj)
    if rng.random() < 0.25:
        body = mutate_bytes(rng, body)
    return rng.choice(paths.v2), [(b"content-type", b"application/json")], body


def _v2_binary_case(rng: random.Random, paths: Paths) -> Case:
    tensors = rng.sample(_BINARY, rng.randrange(1, 3))
    inputs = [
        {"name": f"in{i}", "datatype": datatype, "shape": shape,
         "parameters": {"binary_data_size": len(raw)}}
        for i, (datatype, shape, raw) in enumerate(tensors)
    ]  # fmt: skip
    header: Any = {"inputs": inputs, "parameters": {"binary_data_output": rng.random() < 0.5}}
    if rng.random() < 0.7:
        header = mutate_value(rng, header)
    head = dump_json(header)
    binary = b"".join(raw for _, _, raw in tensors)
    if rng.random() < 0.4:
        binary = mutate_bytes(rng, binary) if binary else bytes(rng.randrange(9))
    length = str(len(head)).encode()
    choice = rng.random()
    if choice < 0.2:
        length = str(len(head) + rng.choice([-3, -1, 1, 5, 10**6])).encode()
    elif choice < 0.3:
        length = rng.choice([b"0", b"-1", b"", b" 7", b"1e3", b"9" * 40, b"\xff"])
    headers = [(b"content-type", b"application/octet-stream")]
    headers.append((b"inference-header-content-length", length))
    return rng.choice(paths.v2), headers, head + binary


def _encoded(rng: random.Random, case: Case) -> Case:
    """Now and then the body compressed (sometimes wrongly) with a Content-Encoding."""
    path, headers, body = case
    if rng.random() >= 0.05:
        return case
    encoding = rng.choice([b"gzip", b"gzip", b"deflate", b"br", b"x-bogus"])
    packed = gzip.compress(body) if encoding == b"gzip" else body
    if rng.random() < 0.5:
        packed = mutate_bytes(rng, packed)
    return path, [*headers, (b"content-encoding", encoding)], packed


def rest_case(run_seed: int, index: int, paths: Paths | None = None) -> Case:
    """Case ``index`` of the run: a Seldon (half), V2 JSON or V2 binary request to ``paths``
    (the component's by default)."""
    paths = paths or COMPONENT_PATHS
    rng = case_rng(run_seed, f"rest:{paths.name}", index)
    make = rng.choices([_seldon_case, _v2_json_case, _v2_binary_case], weights=[5, 3, 2])[0]
    return _encoded(rng, make(rng, paths))


def problem(path: str, status: int, body: bytes) -> str | None:
    """What is wrong with an answer, or None: 2xx, or 4xx with a message saying why."""
    if 200 <= status < 300:
        return None
    if not 400 <= status < 500:
        return f"status {status}: {body[:300]!r}"
    try:
        answer = orjson.loads(body)
        message = answer["error"] if path.startswith("/v2") else answer["status"]["info"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"status {status} without an error message: {body[:300]!r}"
    return None if isinstance(message, str) and message else f"empty message: {body[:300]!r}"


def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"",
            "headers": headers}  # fmt: skip


# ---------------------------------------------------------------- gRPC

_DT = [0, 1, 2, 3, 4, 7, 8, 9, 10, 19, 23, 99, -1]
_DIMS = [0, 1, 2, 3, -1, 2**40, 2**62]


def _seldon_proto(rng: random.Random) -> prediction_pb2.SeldonMessage:
    msg = prediction_pb2.SeldonMessage()
    kind = rng.randrange(5)
    if kind == 0:
        dims = [0, 1, 2, 3, -1, 2**31 - 1]  # an int32 field
        msg.data.tensor.shape.extend(rng.choice(dims) for _ in range(rng.randrange(4)))
        msg.data.tensor.values.extend(rng.random() for _ in range(rng.randrange(7)))
    elif kind == 1:
        tensor = msg.data.tftensor
        tensor.dtype = max(0, rng.choice(_DT))
        for _ in range(rng.randrange(3)):
            tensor.tensor_shape.dim.add(size=rng.choice(_DIMS))
        if rng.random() < 0.5:
            tensor.tensor_content = bytes(rng.randrange(256) for _ in range(rng.randrange(17)))
        else:
            tensor.float_val.extend(rng.random() for _ in range(rng.randrange(4)))
            tensor.string_val.extend(b"\xff" * rng.randrange(3) for _ in range(rng.randrange(3)))
            tensor.scomplex_val.extend(rng.random() for _ in range(rng.randrange(3)))
    elif kind == 2:
        rows = [[rng.random() for _ in range(rng.choice([1, 2]))] for _ in range(3)]
        msg.data.ndarray.extend(rows if rng.random() < 0.5 else [*rows, "x", [[1]]])
    elif kind == 3:
        msg.binData = bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
    else:
        msg.strData = rng.choice(["", "x", "é" * 100])
    if rng.random() < 0.3:
        msg.meta.routing["r"] = rng.choice([0, -1, 2**31 - 1])
        msg.meta.tags["t"].number_value = float("nan")
    return msg


def _v2_proto(rng: random.Random) -> inference_pb2.ModelInferRequest:
    request = inference_pb2.ModelInferRequest(model_name=rng.choice([NAME, "", "other"]))
    for index in range(rng.randrange(3)):
        tensor = request.inputs.add(name=rng.choice([f"in{index}", "", "in0"]))
        tensor.datatype = rng.choice(["FP32", "INT64", "BOOL", "BYTES", "FP16", "BF16", "", "x"])
        tensor.shape.extend(rng.choice(_DIMS) for _ in range(rng.randrange(3)))
        if rng.random() < 0.5:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(17)))
            request.raw_input_contents.append(raw)
        else:
            tensor.contents.fp32_contents.extend(rng.random() for _ in range(rng.randrange(5)))
            tensor.contents.bytes_contents.extend(b"b" for _ in range(rng.randrange(2)))
    return request


def grpc_case(run_seed: int, index: int) -> tuple[str, bytes]:
    rng = case_rng(run_seed, "grpc", index)
    if rng.random() < 0.6:
        method, message = "/seldon.protos.Model/Predict", _seldon_proto(rng)
    else:
        method, message = "/inference.GRPCInferenceService/ModelInfer", _v2_proto(rng)
    data = message.SerializeToString()
    return method, mutate_bytes(rng, data) if rng.random() < 0.3 else data
