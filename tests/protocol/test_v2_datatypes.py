"""Every Open Inference Protocol (V2) datatype round-trips bit for bit through an Echo component.

Echo's ``predict`` returns what it gets: one input's array, or the dict of several inputs.
Each datatype goes through with its edge values (integer extremes, negative zero, the
largest and smallest floats, empty strings, NUL bytes) over:

- REST with JSON data and with the binary tensor extension, sent by ``tritonclient.http``
  to ``infergraph microservice`` on a real socket;
- gRPC ``raw_input_contents``, sent by ``tritonclient.grpc`` (in ``.venv-kserve``, through
  ``interop/v2_client_probe.py``) to the same process;
- gRPC typed ``contents`` and ``raw_input_contents`` built with infergraph's own stubs,
  served in process by :func:`infergraph.testing.serve_grpc`.

What each wire cannot carry, and what the clients do about it (checked here):

- JSON has no NaN or infinity. ``tritonclient.http`` writes them as the bare literals
  ``NaN``/``Infinity``, which are not JSON, and infergraph answers 400 "not valid JSON";
  a JSON ``null`` is read as NaN, and NaN is written back as ``null``.
- JSON strings are UTF-8: ``tritonclient.http`` refuses to put other bytes in JSON, and
  infergraph answers 400, naming the element, when asked to return them as JSON.
- FP16 over JSON: ``tritonclient.http`` does not refuse it; it sends JSON numbers, and
  infergraph reads them and writes FP16 back as numbers that read back exactly.
- FP16 has no typed gRPC field: it travels raw, and typed FP16 is a clear
  INVALID_ARGUMENT.
- BF16 is not supported by infergraph: a client sending it gets a 400 (or
  INVALID_ARGUMENT) naming BF16 and the datatypes that are; ``tritonclient.http`` itself
  refuses BF16 as JSON.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.proto import inference_pb2_grpc as pb_grpc
from infergraph.testing import serve_grpc
from tests.helpers.procs import http_request
from tests.interop.v2_client_probe import decode_tensor, encode_tensor
from tests.interop.v2_peers import Endpoint, kserve_python, run_probe, serving

slow = pytest.mark.slow

MODEL = "echo"
OUTPUT = "output-0"  # the name of a single ndarray result

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
BF16 = triton_to_np_dtype("BF16")  # ml_dtypes.bfloat16: tritonclient's own BF16 arrays
DATATYPES = [pytest.param(datatype, id=datatype) for datatype in DTYPES]

TYPED_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""The spec's typed ``InferTensorContents`` field of each datatype (FP16 has none)."""

ECHO_SOURCE = '''
class Echo:
    """Returns what it is given: one input's array, or the dict of several inputs."""

    def predict(self, X, features_names=None, meta=None):
        return X
'''


class Echo:
    def predict(self, X: Any, features_names: Any = None, meta: Any = None) -> Any:
        return X


def edge_values(datatype: str, *, json_safe: bool = False) -> np.ndarray:
    """A [1, n] array of ``datatype`` with its edge values; ``json_safe`` leaves out what
    JSON cannot carry (NaN and infinities, bytes that are not UTF-8)."""
    dtype = DTYPES[datatype]
    values: list[Any]
    if datatype == "BOOL":
        values = [True, False, False, True]
    elif datatype == "BYTES":
        values = [b"", b"plain", "h\u00e9llo \u2713".encode(), b"nul\x00inside", b""]
        if not json_safe:
            values += [b"\xff\xfe\x80 not UTF-8", b"\xc3"]
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [int(info.min), int(info.max), 0, 1] + ([-1] if dtype.kind == "i" else [])
    else:
        finfo = np.finfo(dtype)
        values = [0.0, -0.0, finfo.max, finfo.min, finfo.tiny, finfo.smallest_subnormal, 1 / 3]
        if not json_safe:
            values += [np.inf, -np.inf, np.nan]
    array = np.empty(len(values), dtype=dtype)
    array[:] = values
    return array.reshape(1, -1)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal shape and elements; numbers bit for bit (negative zero, NaN, extremes)."""
    assert actual.shape == expected.shape, (actual, expected)
    if expected.dtype == object:
        # tritonclient.http hands JSON BYTES back as str: compare their UTF-8
        got = [v.encode() if isinstance(v, str) else bytes(v) for v in actual.ravel()]
        assert got == list(expected.ravel()), (actual, expected)
    else:
        assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
        assert actual.tobytes() == expected.tobytes(), (actual, expected)


def input_name(datatype: str) -> str:
    return f"in-{datatype.lower()}"


# ---------------------------------------------------------------- the Echo process


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    folder = tmp_path_factory.mktemp("v2-echo")
    (folder / "Echo.py").write_text(ECHO_SOURCE)
    with serving(folder, ["microservice", "Echo"], MODEL, env={"PREDICTIVE_UNIT_ID": MODEL}) as ep:
        yield ep


def http_infer(
    endpoint: Endpoint, arrays: dict[str, np.ndarray], binary: bool, datatypes: dict[str, str]
) -> httpclient.InferResult:
    """One ``tritonclient.http`` call; outputs requested by input name (one input: output-0)."""
    client = httpclient.InferenceServerClient(endpoint.http_address)
    try:
        inputs = []
        for name, array in arrays.items():
            infer_input = httpclient.InferInput(name, list(array.shape), datatypes[name])
            inputs.append(infer_input.set_data_from_numpy(array, binary_data=binary))
        names = [OUTPUT] if len(arrays) == 1 else list(arrays)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]
        return client.infer(MODEL, inputs, outputs=outputs)
    finally:
        client.close()


BINARY = [pytest.param(True, id="binary"), pytest.param(False, id="json")]


# ---------------------------------------------------------------- REST: tritonclient.http


@slow
@pytest.mark.parametrize("binary", BINARY)
@pytest.mark.parametrize("datatype", DATATYPES)
def test_rest_round_trips_each_datatype(datatype: str, binary: bool, echo: Endpoint) -> None:
    values = edge_values(datatype, json_safe=not binary)
    result = http_infer(echo, {"x": values}, binary, {"x": datatype})
    [output] = result.get_response()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == (
        OUTPUT,
        datatype,
        [1, values.size],
    )
    assert ("data" in output) is not binary, output
    assert_same(result.as_numpy(OUTPUT), values)


@slow
@pytest.mark.parametrize("binary", BINARY)
def test_rest_round_trips_every_datatype_in_one_request(binary: bool, echo: Endpoint) -> None:
    arrays = {input_name(dt): edge_values(dt, json_safe=not binary) for dt in DTYPES}
    datatypes = {input_name(dt): dt for dt in DTYPES}
    result = http_infer(echo, arrays, binary, datatypes)
    outputs = result.get_response()["outputs"]
    assert [(o["name"], o["datatype"]) for o in outputs] == list(datatypes.items())
    for name, expected in arrays.items():
        assert_same(result.as_numpy(name), expected)


@slow
@pytest.mark.parametrize("binary", BINARY)
@pytest.mark.parametrize(
    ("datatype", "shape"),
    [pytest.param("FP32", [0, 3], id="FP32-0x3"), pytest.param("BYTES", [0], id="BYTES-0")],
)
def test_rest_round_trips_empty_tensors(
    datatype: str, shape: list[int], binary: bool, echo: Endpoint
) -> None:
    empty = np.empty(shape, dtype=DTYPES[datatype])
    result = http_infer(echo, {"x": empty}, binary, {"x": datatype})
    [output] = result.get_response()["outputs"]
    assert (output["datatype"], output["shape"]) == (datatype, shape)
    assert_same(result.as_numpy(OUTPUT), empty)


@slow
def test_tritonclient_http_sends_fp16_json_as_numbers(echo: Endpoint) -> None:
    values = edge_values("FP16", json_safe=True)
    infer_input = httpclient.InferInput("x", list(values.shape), "FP16")
    infer_input.set_data_from_numpy(values, binary_data=False)  # not refused
    body, json_size = httpclient.InferenceServerClient.generate_request_body([infer_input])
    assert json_size is None  # all JSON
    [sent] = json.loads(body)["inputs"]
    assert all(type(v) is float for v in sent["data"]), sent
    # ...and the answer's numbers read back to the same FP16 bits (the REST tests above)
    result = http_infer(echo, {"x": values}, False, {"x": "FP16"})
    assert all(type(v) is float for v in result.get_response()["outputs"][0]["data"])
    assert_same(result.as_numpy(OUTPUT), values)


@slow
@pytest.mark.parametrize("value", [pytest.param(np.nan, id="nan"), pytest.param(np.inf, id="inf")])
def test_tritonclient_http_json_nan_and_infinity_are_not_json(value: float, echo: Endpoint) -> None:
    values = np.array([[1.0, value]], dtype=np.float32)
    with pytest.raises(InferenceServerException) as caught:
        http_infer(echo, {"x": values}, False, {"x": "FP32"})
    assert caught.value.status() == "400"
    assert caught.value.message().startswith("The inference request is not valid JSON: ")


@slow
def test_json_null_reads_as_nan_and_non_finite_writes_as_null(echo: Endpoint) -> None:
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1.5, None, -0.0]}]}
    status, _, data = http_request(echo.http, "POST", f"/v2/models/{MODEL}/infer", body)
    assert status == 200, data
    [output] = json.loads(data)["outputs"]
    assert output["data"] == [1.5, None, -0.0]
    assert str(output["data"][2]) == "-0.0"


@slow
def test_bytes_that_are_not_utf8_cannot_come_back_as_json(echo: Endpoint) -> None:
    values = edge_values("BYTES")  # sent binary, asked back as JSON
    client = httpclient.InferenceServerClient(echo.http_address)
    try:
        infer_input = httpclient.InferInput("x", list(values.shape), "BYTES")
        infer_input.set_data_from_numpy(values, binary_data=True)
        with pytest.raises(InferenceServerException) as caught:
            client.infer(
                MODEL, [infer_input], outputs=[httpclient.InferRequestedOutput(OUTPUT, False)]
            )
    finally:
        client.close()
    assert caught.value.status() == "400"
    assert caught.value.message() == (
        "outputs[0] ('output-0'): BYTES element 5 is not UTF-8, so it cannot be sent as JSON; "
        "request it as binary data (outputs[].parameters.binary_data: true)"
    )
    with pytest.raises(InferenceServerException, match="Please use binary_data=True"):
        httpclient.InferInput("x", list(values.shape), "BYTES").set_data_from_numpy(
            values, binary_data=False
        )


@slow
def test_bf16_is_refused_with_a_clear_400(echo: Endpoint) -> None:
    values = np.array([[1.5, -2.0]], dtype=BF16)
    with pytest.raises(InferenceServerException) as caught:
        http_infer(echo, {"x": values}, True, {"x": "BF16"})
    assert caught.value.status() == "400"
    assert caught.value.message().startswith(
        "inputs[0].datatype: 'BF16' is not supported by infergraph (use one of BOOL, UINT8,"
    )
    with pytest.raises(InferenceServerException, match="BF16 inputs must be sent as binary"):
        httpclient.InferInput("x", [1, 2], "BF16").set_data_from_numpy(values, binary_data=False)


# ---------------------------------------------------------------- gRPC: tritonclient.grpc


@pytest.fixture(scope="module")
def triton_grpc(echo: Endpoint, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe's records: each datatype alone, all at once, empty tensors and BF16."""

    def call(case: str, *tensors: dict[str, Any]) -> dict[str, Any]:
        return {"case": case, "client": "triton-grpc", "call": "infer",
                "url": echo.grpc_address, "model": MODEL, "inputs": list(tensors)}  # fmt: skip

    plan = [call(dt, encode_tensor("x", dt, edge_values(dt))) for dt in DTYPES]
    plan.append(call("all", *(encode_tensor(input_name(dt), dt, edge_values(dt)) for dt in DTYPES)))
    plan.append(call("empty-FP32", encode_tensor("x", "FP32", np.empty((0, 3), np.float32))))
    plan.append(call("empty-BYTES", encode_tensor("x", "BYTES", np.empty(0, object))))
    bf16 = np.array([[1.5, -2.0]], dtype=BF16)
    plan.append(call("BF16", encode_tensor("x", "BF16", bf16)))
    return run_probe(kserve_python(), plan, tmp_path_factory.mktemp("v2-dt-probe"), ("triton",))


@slow
@pytest.mark.parametrize("datatype", DATATYPES)
def test_grpc_raw_round_trips_each_datatype_with_tritonclient(
    datatype: str, triton_grpc: dict[str, Any]
) -> None:
    record = triton_grpc[datatype]
    assert record["error"] is None, record
    assert record["response"]["binary"] is True, record  # raw in, raw out
    [output] = record["outputs"]
    assert (output["name"], output["datatype"]) == (OUTPUT, datatype)
    assert_same(decode_tensor(output), edge_values(datatype))


@slow
def test_grpc_raw_round_trips_every_datatype_in_one_request_with_tritonclient(
    triton_grpc: dict[str, Any],
) -> None:
    record = triton_grpc["all"]
    assert record["error"] is None, record
    got = {o["name"]: o for o in record["outputs"]}
    assert list(got) == [input_name(dt) for dt in DTYPES]
    for datatype in DTYPES:
        output = got[input_name(datatype)]
        assert output["datatype"] == datatype
        assert_same(decode_tensor(output), edge_values(datatype))


@slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c) for c in ("empty-FP32", "empty-BYTES")])
def test_grpc_raw_round_trips_empty_tensors_with_tritonclient(
    case: str, triton_grpc: dict[str, Any]
) -> None:
    record = triton_grpc[case]
    assert record["error"] is None, record
    [output] = record["outputs"]
    datatype = case.removeprefix("empty-")
    expected = np.empty((0, 3) if datatype == "FP32" else (0,), DTYPES[datatype])
    assert output["datatype"] == datatype
    assert_same(decode_tensor(output), expected)


@slow
def test_grpc_bf16_is_invalid_argument_with_tritonclient(triton_grpc: dict[str, Any]) -> None:
    record = triton_grpc["BF16"]
    assert record["status"] == "INVALID_ARGUMENT", record
    assert record["error"].startswith(
        "input 'x': unknown datatype 'BF16'; use one of BOOL, UINT8,"
    ), record


# ---------------------------------------------------------------- gRPC: infergraph's own stubs


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with serve_grpc(Echo(), unit_id=MODEL) as address, grpc.insecure_channel(address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def typed_tensor(name: str, datatype: str, array: np.ndarray) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=list(array.shape)
    )
    getattr(tensor.contents, TYPED_FIELD[datatype]).extend(array.ravel().tolist())
    return tensor


def raw_bytes(datatype: str, array: np.ndarray) -> bytes:
    """The spec's raw layout: little-endian, row-major; BYTES with 4-byte length prefixes."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in array.ravel())
    return np.ascontiguousarray(array, dtype=DTYPES[datatype].newbyteorder("<")).tobytes()


def read_typed(output: Any) -> np.ndarray:
    values = list(getattr(output.contents, TYPED_FIELD[output.datatype]))
    array = np.empty(len(values), dtype=DTYPES[output.datatype])
    array[:] = values
    return array.reshape(list(output.shape))


def read_raw(output: Any, data: bytes) -> np.ndarray:
    shape = list(output.shape)
    if output.datatype != "BYTES":
        dtype = DTYPES[output.datatype].newbyteorder("<")
        return np.frombuffer(data, dtype=dtype).astype(DTYPES[output.datatype]).reshape(shape)
    items, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        items.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


TYPED_DATATYPES = [p for p in DATATYPES if p.values[0] != "FP16"]


@pytest.mark.parametrize("datatype", TYPED_DATATYPES)
def test_grpc_typed_contents_round_trip_each_datatype(
    datatype: str, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    values = edge_values(datatype)
    request = pb.ModelInferRequest(model_name=MODEL, inputs=[typed_tensor("x", datatype, values)])
    response = stub.ModelInfer(request, timeout=10)
    assert not response.raw_output_contents  # typed in, typed out
    [output] = response.outputs
    assert (output.name, output.datatype) == (OUTPUT, datatype)
    assert_same(read_typed(output), values)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_grpc_raw_contents_round_trip_each_datatype(
    datatype: str, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    values = edge_values(datatype)
    request = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="x", datatype=datatype, shape=[1, values.size]
            )
        ],
        raw_input_contents=[raw_bytes(datatype, values)],
    )
    response = stub.ModelInfer(request, timeout=10)
    [output] = response.outputs
    [data] = response.raw_output_contents  # raw in, raw out
    assert (output.name, output.datatype) == (OUTPUT, datatype)
    assert not output.HasField("contents")
    assert_same(read_raw(output, data), values)


@pytest.mark.parametrize("raw", [pytest.param(True, id="raw"), pytest.param(False, id="typed")])
def test_grpc_round_trips_several_datatypes_in_one_request(
    raw: bool, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    datatypes = [dt for dt in DTYPES if raw or dt != "FP16"]
    arrays = {input_name(dt): edge_values(dt) for dt in datatypes}
    request = pb.ModelInferRequest(model_name=MODEL)
    for datatype in datatypes:
        array = arrays[input_name(datatype)]
        if raw:
            request.inputs.add(name=input_name(datatype), datatype=datatype, shape=array.shape)
            request.raw_input_contents.append(raw_bytes(datatype, array))
        else:
            request.inputs.append(typed_tensor(input_name(datatype), datatype, array))
    response = stub.ModelInfer(request, timeout=10)
    assert [(o.name, o.datatype) for o in response.outputs] == [
        (input_name(dt), dt) for dt in datatypes
    ]
    if raw:
        got = [
            read_raw(o, d)
            for o, d in zip(response.outputs, response.raw_output_contents, strict=True)
        ]
    else:
        assert not response.raw_output_contents
        got = [read_typed(o) for o in response.outputs]
    for actual, expected in zip(got, arrays.values(), strict=True):
        assert_same(actual, expected)


def test_grpc_typed_fp16_is_invalid_argument(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP16", shape=[2])
    tensor.contents.fp32_contents.extend([1.0, 2.0])
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[tensor]), timeout=10)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "input 'x': FP16 has no typed contents field; send it as raw contents"


@pytest.mark.parametrize(
    ("datatype", "values", "message"),
    [
        pytest.param(
            "UINT8", [0, 256], r"contents\.uint_contents holds values outside the UINT8 range",
            id="uint8-256",
        ),
        pytest.param(
            "INT8", [-129], r"contents\.int_contents holds values outside the INT8 range",
            id="int8-minus-129",
        ),
        pytest.param(
            "UINT16", [65536], r"contents\.uint_contents holds values outside the UINT16 range",
            id="uint16-65536",
        ),
        pytest.param(
            "INT16", [32768], r"contents\.int_contents holds values outside the INT16 range",
            id="int16-32768",
        ),
    ],
)  # fmt: skip
def test_grpc_typed_values_out_of_range_are_invalid_argument(
    datatype: str, values: list[int], message: str, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype=datatype, shape=[len(values)])
    getattr(tensor.contents, TYPED_FIELD[datatype]).extend(values)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[tensor]), timeout=10)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(message, error.details()), error.details()


@slow
@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        pytest.param("UINT8", 256, id="uint8-256"),
        pytest.param("INT8", -129, id="int8-minus-129"),
        pytest.param("UINT64", -1, id="uint64-minus-1"),
        pytest.param("INT64", 2**63, id="int64-2**63"),
        pytest.param("FP16", 65520, id="fp16-65520"),
    ],
)
def test_rest_json_values_out_of_range_are_a_400(datatype: str, value: int, echo: Endpoint) -> None:
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": datatype, "data": [0, value]}]}
    status, headers, data = http_request(echo.http, "POST", f"/v2/models/{MODEL}/infer", body)
    assert (status, headers["content-type"]) == (400, "application/json"), data
    error = json.loads(data)["error"]
    assert error.startswith(f"inputs[0].data: element 1 is {value}, out of range for {datatype}")
