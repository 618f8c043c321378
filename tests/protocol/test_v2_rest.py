"""The V2 REST codec: golden bodies, round trips of every datatype, errors, a fuzz, and
interop with Triton's own ``tritonclient.http`` serialisation."""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from infergraph.errors import BadRequest, InferGraphError
from infergraph.protocol import v2_rest
from infergraph.protocol.v2_types import (
    DATATYPES,
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)

GOLDEN = Path(__file__).parents[1] / "golden" / "v2_rest"


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def spec_output() -> Tensor:
    values = np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]], dtype=np.float32)
    return Tensor("output0", "FP32", [3, 2], values)


def framed(header: bytes, tail: bytes) -> tuple[bytes, int]:
    """A body of a JSON header and binary tensor data, with the header's length."""
    return header + tail, len(header)


def json_request(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def int32_input(**overrides: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2], **overrides}


# ---------------------------------------------------------------- golden bodies


def test_spec_example_request_is_rejected_for_its_own_shape_typo() -> None:
    with pytest.raises(BadRequest, match=r"^inputs\[1\]\.shape: \[3\] needs 3 values, got 1$"):
        v2_rest.decode_request(golden("spec_request.json"))


def test_spec_example_request_decodes() -> None:
    request = v2_rest.decode_request(golden("spec_request_corrected.json"))

    assert request.id == "42"
    assert request.parameters == {}
    assert [(t.name, t.datatype, t.shape) for t in request.inputs] == [
        ("input0", "UINT32", [2, 2]),
        ("input1", "BOOL", [3]),
    ]
    np.testing.assert_array_equal(request.inputs[0].data, [[1, 2], [3, 4]])
    assert request.inputs[0].data.dtype == np.uint32
    np.testing.assert_array_equal(request.inputs[1].data, [True, False, True])
    assert request.outputs == [RequestedOutput("output0")]


def test_spec_example_response_encodes_byte_for_byte() -> None:
    request = v2_rest.decode_request(golden("spec_request_corrected.json"))
    response = InferenceResponse("mymodel", [spec_output()])

    assert v2_rest.encode_response(response, request) == (golden("spec_response.json"), None)


def test_spec_example_response_decodes() -> None:
    response = v2_rest.decode_response(golden("spec_response.json"))

    assert (response.model_name, response.model_version, response.id) == ("mymodel", None, "42")
    np.testing.assert_array_equal(response.outputs[0].data, spec_output().data)


def test_binary_extension_example_request_decodes() -> None:
    tail = struct.pack("<4I", 1, 2, 3, 4) + bytes([1, 0, 1])
    body, length = framed(golden("binary_request_header.json"), tail)

    request = v2_rest.decode_request(body, length)

    np.testing.assert_array_equal(request.inputs[0].data, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(request.inputs[1].data, [True, False, True])
    assert request.inputs[0].parameters == {}, "binary_data_size is framing, not a parameter"
    assert request.outputs == [RequestedOutput("output0", {"binary_data": True})]


def test_binary_extension_example_response_encodes_byte_for_byte() -> None:
    request = v2_rest.decode_request(
        *framed(golden("binary_request_header.json"), bytes(16) + bytes(3))
    )
    header = golden("binary_response_header.json")
    tail = struct.pack("<6f", *spec_output().data.reshape(-1).tolist())

    body, length = v2_rest.encode_response(InferenceResponse("mymodel", [spec_output()]), request)

    assert (body, length) == (header + tail, len(header))


def test_error_body() -> None:
    assert v2_rest.error_body('no model "m"') == b'{"error":"no model \\"m\\""}'


# ---------------------------------------------------------------- every datatype

SAMPLES: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535], [7, 8, 9]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1], [7, 8, 9]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1], [7, 8, 9]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127], [7, 8, 9]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 0, 2**15 - 1], [7, 8, 9]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1], [7, 8, 9]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1], [7, 8, 9]], dtype=np.int64),
    "FP16": np.array([[0.1, -2.5, 65504.0], [1e-4, 0.0, 3.14]], dtype=np.float16),
    "FP32": np.array([[0.1, -2.5, 3.4e38], [1e-30, 0.0, 3.14]], dtype=np.float32),
    "FP64": np.array([[0.1, -2.5, 1.7e308], [5e-324, 0.0, np.pi]], dtype=np.float64),
    "BYTES": np.array([[b"", b"a", "h\u00e9llo \u263a".encode()], [b"x", b"yz", b"{}"]], object),
}
ALL_DATATYPES = [pytest.param(name, id=name) for name in DATATYPES]


def assert_same_tensor(got: Tensor, sent: Tensor) -> None:
    assert (got.name, got.datatype, got.shape) == (sent.name, sent.datatype, sent.shape)
    assert got.data.dtype == DATATYPES[sent.datatype]
    assert got.data.shape == tuple(sent.shape)
    assert got.data.tolist() == sent.data.tolist()


def test_samples_cover_every_datatype() -> None:
    assert set(SAMPLES) == set(DATATYPES)


@pytest.mark.parametrize("binary", [pytest.param(False, id="json"), pytest.param(True, id="bin")])
@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_request_round_trip(datatype: str, binary: bool) -> None:
    tensor = Tensor("t", datatype, [2, 3], SAMPLES[datatype], {"tag": "v"})
    request = InferenceRequest([tensor], id="r1", parameters={"priority": 1})

    body, length = v2_rest.encode_request(request, binary=binary)
    decoded = v2_rest.decode_request(body, length)

    assert (length is not None) is binary
    assert_same_tensor(decoded.inputs[0], tensor)
    assert decoded.inputs[0].parameters == {"tag": "v"}
    assert decoded.id == "r1"
    expected = {"priority": 1, "binary_data_output": True} if binary else {"priority": 1}
    assert decoded.parameters == expected


@pytest.mark.parametrize("binary", [pytest.param(False, id="json"), pytest.param(True, id="bin")])
@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_response_round_trip(datatype: str, binary: bool) -> None:
    tensor = Tensor("t", datatype, [2, 3], SAMPLES[datatype])
    request = InferenceRequest([], parameters={"binary_data_output": binary})
    response = InferenceResponse("m", [tensor], model_version="3", id="r1")

    body, length = v2_rest.encode_response(response, request)
    decoded = v2_rest.decode_response(body, length)

    assert (length is not None) is binary
    assert_same_tensor(decoded.outputs[0], tensor)
    assert (decoded.model_name, decoded.model_version, decoded.id) == ("m", "3", "r1")


@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_empty_tensor_round_trips(datatype: str) -> None:
    tensor = Tensor("t", datatype, [0, 4], np.empty((0, 4), DATATYPES[datatype]))
    for binary in (False, True):
        decoded = v2_rest.decode_request(
            *v2_rest.encode_request(InferenceRequest([tensor]), binary=binary)
        )
        assert_same_tensor(decoded.inputs[0], tensor)


def test_fp16_json_is_written_as_its_shortest_float32_and_reads_back_exactly() -> None:
    tensor = Tensor("h", "FP16", [2], np.array([0.1, 1.1], np.float16))

    body, _ = v2_rest.encode_response(InferenceResponse("m", [tensor]), None)

    assert orjson.loads(body)["outputs"][0]["data"] == [0.099975586, 1.0996094]
    assert v2_rest.decode_response(body).outputs[0].data.tolist() == tensor.data.tolist()


def test_nan_is_null_in_json_and_reads_back_as_nan() -> None:
    tensor = Tensor("f", "FP32", [2], np.array([np.nan, 1.0], np.float32))

    body, _ = v2_rest.encode_response(InferenceResponse("m", [tensor]), None)
    data = v2_rest.decode_response(body).outputs[0].data

    assert orjson.loads(body)["outputs"][0]["data"] == [None, 1.0]
    assert np.isnan(data[0]) and data[1] == 1.0


def test_decoded_binary_arrays_are_writable_copies() -> None:
    request = InferenceRequest([Tensor("t", "FP32", [2], np.ones(2, np.float32))])

    decoded = v2_rest.decode_request(*v2_rest.encode_request(request, binary=True))
    decoded.inputs[0].data[0] = 5.0

    assert decoded.inputs[0].data.tolist() == [5.0, 1.0]


# ---------------------------------------------------------------- nested vs flat


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([1, 2, 3, 4, 5, 6], id="flat"),
        pytest.param([[1, 2, 3], [4, 5, 6]], id="nested"),
        pytest.param([[[1], [2], [3]], [[4], [5], [6]]], id="over-nested"),
        pytest.param([[1, 2], [3, 4, 5, 6]], id="ragged-same-count"),
    ],
)
def test_nested_and_flat_data_decode_alike(data: list[Any]) -> None:
    body = json_request({"name": "x", "shape": [2, 3], "datatype": "INT64", "data": data})

    assert v2_rest.decode_request(body).inputs[0].data.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_deep_nesting_is_flattened_without_recursion() -> None:
    data = b"[" * 900 + b"7" + b"]" * 900
    body = b'{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":' + data + b"}]}"

    assert v2_rest.decode_request(body).inputs[0].data.tolist() == [7]


def test_scalar_shape_holds_one_value() -> None:
    body = json_request({"name": "x", "shape": [], "datatype": "FP64", "data": [2.5]})

    assert v2_rest.decode_request(body).inputs[0].data.shape == ()


# ---------------------------------------------------------------- BYTES


def test_non_utf8_bytes_round_trip_through_binary() -> None:
    values = np.array([b"\xff\xfe", b"\x00\x80 ok", b"\xc3"], dtype=object)
    tensor = Tensor("b", "BYTES", [3], values)

    request = v2_rest.decode_request(
        *v2_rest.encode_request(InferenceRequest([tensor]), binary=True)
    )
    response = InferenceResponse("m", [tensor])
    body, length = v2_rest.encode_response(
        response, InferenceRequest([], parameters={"binary_data_output": True})
    )

    assert request.inputs[0].data.tolist() == values.tolist()
    assert v2_rest.decode_response(body, length).outputs[0].data.tolist() == values.tolist()


def test_non_utf8_bytes_cannot_be_json() -> None:
    tensor = Tensor("b", "BYTES", [1], np.array([b"\xff"], dtype=object))

    with pytest.raises(BadRequest, match=r"outputs\[0\] \('b'\): BYTES element 0 is not UTF-8"):
        v2_rest.encode_response(InferenceResponse("m", [tensor]), None)
    with pytest.raises(BadRequest, match="binary=True"):
        v2_rest.encode_request(InferenceRequest([tensor]))


def test_bytes_binary_layout_is_length_prefixed() -> None:
    tensor = Tensor("b", "BYTES", [2], np.array([b"ab", "\u00e9"], dtype=object))

    body, length = v2_rest.encode_request(InferenceRequest([tensor]), binary=True)

    assert length is not None
    assert body[length:] == b"\x02\x00\x00\x00ab\x02\x00\x00\x00\xc3\xa9"


# ---------------------------------------------------------------- malformed requests

HEADER = json_request(
    {"name": "x", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}}
)
BYTES_HEADER = json_request(
    {"name": "s", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 9}}
)
BOOL_HEADER = json_request(
    {"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}
)
BOTH_HEADER = json_request({**int32_input(), "parameters": {"binary_data_size": 8}})


# fields of the one INT32 input `int32_input()` replaced -> the error message
BAD_INPUT: dict[str, tuple[dict[str, Any], str]] = {
    "count": ({"data": [1, 2, 3]}, r"^inputs\[0\]\.shape: \[2\] needs 2 values, got 3$"),
    "datatype": ({"datatype": "FP8"}, r"^inputs\[0\]\.datatype: 'FP8' is not a V2 datatype"),
    "datatype-bf16": ({"datatype": "BF16"}, r"'BF16' is not supported by infergraph"),
    "datatype-null": ({"datatype": None}, r"^inputs\[0\]\.datatype must be a string"),
    "shape-negative": ({"shape": [-2]}, r"^inputs\[0\]\.shape must be a list of non-negative"),
    "shape-string": ({"shape": "2"}, r"^inputs\[0\]\.shape must be a list"),
    "shape-float": ({"shape": [2.0]}, r"^inputs\[0\]\.shape must be a list"),
    "shape-huge": ({"shape": [0, 2**62], "data": []}, r"^inputs\[0\]\.shape: \[0, \d+\] is too"),
    "name-empty": ({"name": ""}, r"^inputs\[0\]\.name must be a non-empty string"),
    "data-null": ({"data": None}, r"^inputs\[0\]\.data must be a list, got null"),
    "data-string": ({"data": "12"}, r"^inputs\[0\]\.data must be a list, got a string"),
    "float-in-int": ({"data": [1, 2.5]}, r"^inputs\[0\]\.data: element 1 is 2\.5; INT32 needs"),
    "bool-in-int": ({"data": [1, True]}, r"element 1 is true; INT32 needs integers"),
    "uint8-300": (
        {"datatype": "UINT8", "data": [1, 300]},
        r"^inputs\[0\]\.data: element 1 is 300, out of range for UINT8 \(0 to 255\)$",
    ),
    "int8-low": ({"datatype": "INT8", "data": [-129, 0]}, r"element 0 is -129, out of range"),
    "uint64-negative": ({"datatype": "UINT64", "data": [-1, 0]}, r"out of range for UINT64"),
    "int64-high": ({"datatype": "INT64", "data": [2**63, 0]}, r"out of range for INT64"),
    "fp32-overflow": ({"datatype": "FP32", "data": [1e39, 0]}, r"is 1e\+39, out of range for FP32"),
    "fp16-overflow": ({"datatype": "FP16", "data": [1, 70000]}, r"is 70000, out of range for FP16"),
    "string-in-float": ({"datatype": "FP32", "data": ["1", 0]}, r'is "1"; FP32 needs numbers'),
    "int-in-bool": ({"datatype": "BOOL", "data": [1, 0]}, r"is 1; BOOL needs true or false"),
    "number-in-bytes": ({"datatype": "BYTES", "data": ["a", 1]}, r"is 1; BYTES needs strings"),
    "input-parameters": ({"parameters": [1]}, r"^inputs\[0\]\.parameters must be an object"),
}

# a request with one good input and these top-level fields -> the error message
BAD_REQUEST: dict[str, tuple[dict[str, Any], str]] = {
    "id-number": ({"id": 42}, r"^id must be a string, got a number"),
    "parameters": ({"parameters": "x"}, r"^parameters must be an object"),
    "binary-data-output": (
        {"parameters": {"binary_data_output": 1}},
        r"^parameters\.binary_data_output must be true or false",
    ),
    "outputs-dict": ({"outputs": {"name": "y"}}, r"^outputs must be a list"),
    "output-no-name": ({"outputs": [{}]}, r"^outputs\[0\]\.name must be a non-empty string"),
    "output-twice": (
        {"outputs": [{"name": "y"}, {"name": "y"}]},
        r"^outputs\[1\]\.name: 'y' is requested twice",
    ),
    "binary-data": (
        {"outputs": [{"name": "y", "parameters": {"binary_data": "yes"}}]},
        r"^outputs\[0\]\.parameters\.binary_data must be true or false",
    ),
}

SIZE = r"^inputs\[0\]\.parameters\.binary_data_size"
MALFORMED = [
    *(
        pytest.param(json_request(int32_input(**fields)), None, message, id=name)
        for name, (fields, message) in BAD_INPUT.items()
    ),
    *(
        pytest.param(json_request(int32_input(), **fields), None, message, id=name)
        for name, (fields, message) in BAD_REQUEST.items()
    ),
    pytest.param(b"{not json", None, r"^The inference request is not valid JSON", id="non-json"),
    pytest.param(b"[1, 2]", None, r"must be a JSON object, got a list", id="json-not-object"),
    pytest.param(b"{}", None, r"^inputs is missing", id="missing-inputs"),
    pytest.param(b'{"inputs": {}}', None, r"^inputs must be a list of tensors", id="inputs-dict"),
    pytest.param(b'{"inputs": [3]}', None, r"^inputs\[0\] must be an object", id="input-number"),
    pytest.param(
        json_request(int32_input(), int32_input(name="y", shape=[2, 3], data=[1, 2, 3, 4, 5])),
        None,
        r"^inputs\[1\]\.shape: \[2, 3\] needs 6 values, got 5$",
        id="count-second-input",
    ),
    pytest.param(
        json_request(int32_input(), int32_input()),
        None,
        r"^inputs\[1\]\.name: 'x' appears twice",
        id="name-twice",
    ),
    pytest.param(
        json_request({"name": "x", "shape": [1], "datatype": "INT8"}),
        None,
        r"^inputs\[0\] has neither data nor parameters\.binary_data_size",
        id="no-data",
    ),
    pytest.param(
        json_request(int32_input(datatype="FP64")).replace(b"[1,2]", b"[1e400,2]"),
        None,
        r"^The inference request is not valid JSON: number is infinity",
        id="fp64-beyond-double",
    ),
    pytest.param(
        json_request(int32_input(datatype="UINT64")).replace(b"[1,2]", b"[18446744073709551616,2]"),
        None,
        r"element 0 is 1\.8446744073709552e\+?19; UINT64 needs integers",  # orjson writes e19
        id="uint64-beyond-64-bits",
    ),
    pytest.param(
        *(HEADER + bytes(8), len(HEADER) + 9),
        r"^Inference-Header-Content-Length: \d+ does not fit the \d+-byte body",
        id="header-longer-than-body",
    ),
    pytest.param(
        *(HEADER + bytes(8), -1),
        r"^Inference-Header-Content-Length: -1 does not fit",
        id="header-negative",
    ),
    pytest.param(
        *(HEADER + bytes(8), len(HEADER) - 1),
        r"^The inference request is not valid JSON",
        id="header-too-short",
    ),
    pytest.param(
        *(HEADER + bytes(8), None),
        r"^The inference request is not valid JSON",
        id="binary-without-header",
    ),
    pytest.param(
        *(HEADER, None),
        SIZE + r" needs binary data after the JSON header",
        id="size-without-header",
    ),
    pytest.param(
        *framed(HEADER.replace(b":8", b":12"), bytes(12)),
        SIZE + r": shape \[2\] of INT32 needs 8 bytes, got 12$",
        id="size-mismatch",
    ),
    pytest.param(
        *framed(HEADER, bytes(5)),
        SIZE + r": 8 bytes, but only 5 bytes of binary data remain after the JSON header$",
        id="size-past-body",
    ),
    pytest.param(
        *framed(HEADER, bytes(10)),
        r"^2 bytes of binary data after the JSON header are not claimed",
        id="unclaimed-bytes",
    ),
    pytest.param(
        *framed(HEADER.replace(b":8", b":-8"), bytes(8)),
        SIZE + r" must be a non-negative integer, got -8",
        id="size-negative",
    ),
    pytest.param(
        *framed(HEADER.replace(b":8", b':"8"'), bytes(8)),
        SIZE + r" must be a non-negative integer",
        id="size-string",
    ),
    pytest.param(
        *framed(BOTH_HEADER, bytes(8)),
        r"^inputs\[0\] has both data and parameters\.binary_data_size",
        id="data-and-size",
    ),
    pytest.param(
        *framed(BYTES_HEADER, b"\x01\x00\x00\x00a\x09\x00\x00\x00"),
        r"^inputs\[0\]: BYTES element 1 claims 9 bytes but only 0 remain",
        id="bytes-element-overflows",
    ),
    pytest.param(
        *framed(BYTES_HEADER, b"\x02\x00\x00\x00ab\x00\x00\x00"),
        r"^inputs\[0\]: BYTES element 1 has a truncated 4-byte length prefix",
        id="bytes-truncated-prefix",
    ),
    pytest.param(
        *framed(BYTES_HEADER, bytes(9)),
        r"^inputs\[0\]: BYTES element 2 has a truncated",
        id="bytes-extra-bytes",
    ),
    pytest.param(
        *framed(BYTES_HEADER, b"\x05\x00\x00\x00abcde"),
        r"^inputs\[0\]: shape needs 2 BYTES elements, binary data holds 1$",
        id="bytes-too-few",
    ),
    pytest.param(
        *framed(BOOL_HEADER, b"\x01\x02"),
        r"^inputs\[0\]: BOOL byte 1 is 2; binary BOOL is 0 or 1$",
        id="bool-byte-2",
    ),
]


@pytest.mark.parametrize(("body", "header_length", "message"), MALFORMED)
def test_malformed_request_is_a_bad_request(
    body: bytes, header_length: int | None, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        v2_rest.decode_request(body, header_length)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("0", 0, id="zero"),
        pytest.param(" 125 ", 125, id="spaces"),
    ],
)
def test_parse_header_length(value: str | None, expected: int | None) -> None:
    assert v2_rest.parse_header_length(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "-1", "1_0", "\u00b2", "1.5"])
def test_parse_header_length_rejects(value: str) -> None:
    with pytest.raises(
        BadRequest, match=r"^Inference-Header-Content-Length: .* is not a non-negative integer"
    ):
        v2_rest.parse_header_length(value)


# ---------------------------------------------------------------- raw binary requests


def test_raw_request_needs_a_single_known_input() -> None:
    with pytest.raises(BadRequest, match=r"raw binary request.*single known input"):
        v2_rest.decode_request(bytes(8), 0)


def test_raw_request_deduces_its_variable_dimension_and_asks_for_binary_outputs() -> None:
    values = np.arange(8, dtype=np.float32)

    request = v2_rest.decode_request(values.tobytes(), 0, raw_input=("INPUT0", "FP32", [-1, 4]))

    assert (request.inputs[0].name, request.inputs[0].shape) == ("INPUT0", [2, 4])
    np.testing.assert_array_equal(request.inputs[0].data, values.reshape(2, 4))
    _, length = v2_rest.encode_response(InferenceResponse("m", [spec_output()]), request)
    assert length is not None


def test_raw_bytes_input_is_the_whole_body() -> None:
    request = v2_rest.decode_request(b"\xff\x00jpeg", 0, raw_input=("image", "BYTES", [-1]))

    assert request.inputs[0].shape == [1]
    assert request.inputs[0].data.tolist() == [b"\xff\x00jpeg"]


@pytest.mark.parametrize(
    ("raw_input", "size", "message"),
    [
        pytest.param(
            ("x", "FP32", [2, 2]), 12, r"shape \[2, 2\] of FP32 needs 16 bytes", id="fixed-size"
        ),
        pytest.param(
            ("x", "FP32", [-1, 3]), 16, r"not a whole number of FP32 rows", id="not-whole"
        ),
        pytest.param(
            ("x", "FP32", [-1, -1]), 16, r"more than one variable dimension", id="two-variable"
        ),
        pytest.param(
            ("x", "BYTES", [2]), 4, r"a BYTES raw input needs shape \[1\]", id="bytes-shape"
        ),
        pytest.param(("x", "FP9", [1]), 4, r"datatype 'FP9' is not a V2 datatype", id="datatype"),
    ],
)
def test_raw_request_errors(raw_input: tuple[str, str, list[int]], size: int, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        v2_rest.decode_request(bytes(size), 0, raw_input=raw_input)


# ---------------------------------------------------------------- response choices


def two_outputs() -> InferenceResponse:
    return InferenceResponse(
        "m",
        [
            Tensor("a", "INT32", [2], np.array([1, 2], np.int32), {"binary_data_size": 99}),
            Tensor("b", "FP64", [1], np.array([0.5]), {"note": "kept"}),
        ],
    )


def test_all_outputs_are_json_without_a_request() -> None:
    body, length = v2_rest.encode_response(two_outputs(), None)

    assert length is None
    assert orjson.loads(body)["outputs"] == [
        {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]},
        {
            "name": "b",
            "shape": [1],
            "datatype": "FP64",
            "parameters": {"note": "kept"},
            "data": [0.5],
        },
    ]


def test_requested_outputs_choose_and_order() -> None:
    request = InferenceRequest([], outputs=[RequestedOutput("b"), RequestedOutput("a")])

    body, _ = v2_rest.encode_response(two_outputs(), request)

    assert [o["name"] for o in orjson.loads(body)["outputs"]] == ["b", "a"]
    only_b = InferenceRequest([], outputs=[RequestedOutput("b")])
    assert [
        o.name
        for o in v2_rest.decode_response(v2_rest.encode_response(two_outputs(), only_b)[0]).outputs
    ] == ["b"]


def test_unknown_requested_output_is_a_bad_request() -> None:
    request = InferenceRequest([], outputs=[RequestedOutput("a"), RequestedOutput("zz")])

    with pytest.raises(
        BadRequest,
        match=r"^outputs\[1\]\.name: 'zz' is not an output of the model \(its outputs: 'a', 'b'\)$",
    ):
        v2_rest.encode_response(two_outputs(), request)


def test_per_output_binary_data_overrides_binary_data_output() -> None:
    request = InferenceRequest(
        [],
        parameters={"binary_data_output": True},
        outputs=[RequestedOutput("a"), RequestedOutput("b", {"binary_data": False})],
    )

    body, length = v2_rest.encode_response(two_outputs(), request)

    assert length is not None
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert header["outputs"][1]["data"] == [0.5]
    assert body[length:] == struct.pack("<2i", 1, 2)


def test_one_binary_output_of_json_request() -> None:
    request = InferenceRequest(
        [], outputs=[RequestedOutput("b", {"binary_data": True}), RequestedOutput("a")]
    )

    body, length = v2_rest.encode_response(two_outputs(), request)
    decoded = v2_rest.decode_response(body, length)

    assert [o.data.tolist() for o in decoded.outputs] == [[0.5], [1, 2]]
    assert decoded.outputs[0].parameters == {"note": "kept"}


@pytest.mark.parametrize(
    ("response_id", "request_id", "expected"),
    [
        pytest.param(None, "q", "q", id="echoed"),
        pytest.param("r", "q", "r", id="response-wins"),
        pytest.param(None, None, None, id="omitted"),
    ],
)
def test_id_is_echoed(
    response_id: str | None, request_id: str | None, expected: str | None
) -> None:
    response = InferenceResponse("m", [], id=response_id)

    body, _ = v2_rest.encode_response(response, InferenceRequest([], id=request_id))

    assert orjson.loads(body).get("id") == expected


def test_model_version_and_parameters_only_when_given() -> None:
    assert orjson.loads(v2_rest.encode_response(InferenceResponse("m", []), None)[0]) == {
        "model_name": "m",
        "outputs": [],
    }
    full = InferenceResponse("m", [], model_version="2", parameters={"k": 1})
    assert orjson.loads(v2_rest.encode_response(full, None)[0]) == {
        "model_name": "m",
        "model_version": "2",
        "parameters": {"k": 1},
        "outputs": [],
    }


def test_inconsistent_output_tensor_is_an_internal_error() -> None:
    response = InferenceResponse("m", [Tensor("a", "INT32", [3], np.array([1, 2]))])

    with pytest.raises(
        InferGraphError,
        match=r"outputs\[0\] \('a'\): shape \[3\] needs 3 values, the tensor holds 2",
    ) as info:
        v2_rest.encode_response(response, None)
    assert not isinstance(info.value, BadRequest)


def test_error_response_is_reported_by_decode_response() -> None:
    with pytest.raises(
        BadRequest,
        match=r"outputs is missing from the inference response \(it reports an error: \"boom\"\)",
    ):
        v2_rest.decode_response(v2_rest.error_body("boom"))


def test_encode_request_keeps_requested_outputs() -> None:
    request = InferenceRequest(
        [Tensor("x", "INT8", [1], np.array([1], np.int8))],
        outputs=[RequestedOutput("y", {"binary_data": True}), RequestedOutput("z")],
    )

    decoded = v2_rest.decode_request(*v2_rest.encode_request(request))

    assert decoded.outputs == request.outputs


# ---------------------------------------------------------------- fuzz


def seed_bodies() -> list[tuple[bytes, int | None]]:
    mixed = InferenceRequest(
        [
            Tensor("i", "INT16", [2, 2], np.array([[1, -2], [3, 4]], np.int16)),
            Tensor("s", "BYTES", [2], np.array([b"ab", b"\xff"], object)),
            Tensor("f", "FP16", [3], np.array([0.5, 1, 2], np.float16)),
            Tensor("b", "BOOL", [1], np.array([True])),
        ],
        id="7",
        parameters={"p": 1},
        outputs=[RequestedOutput("o", {"binary_data": True})],
    )
    json_only = InferenceRequest(
        [Tensor(t.name, t.datatype, t.shape, t.data) for t in mixed.inputs if t.name != "s"]
    )
    return [
        v2_rest.encode_request(mixed, binary=True),
        v2_rest.encode_request(json_only),
        (golden("spec_request_corrected.json"), None),
    ]


REPLACEMENTS: list[Any] = [
    None,
    -1,
    0,
    2**64 - 1,
    1e300,
    1.5,
    "x",
    "FP32",
    True,
    [],
    {},
    [[1], [2, [3]]],
    {"binary_data_size": 3},
]


def mutate_json(obj: Any, rng: random.Random) -> Any:
    """Replace one value somewhere in ``obj`` (or delete a key) and return the new root."""
    if not isinstance(obj, dict | list) or not obj or rng.random() < 0.25:
        return rng.choice(REPLACEMENTS)
    key = rng.choice(list(obj)) if isinstance(obj, dict) else rng.randrange(len(obj))
    if isinstance(obj, dict) and rng.random() < 0.15:
        del obj[key]
        return obj
    obj[key] = mutate_json(obj[key], rng)
    return obj


def mutate(body: bytes, length: int | None, rng: random.Random) -> tuple[bytes, int | None]:
    choice = rng.randrange(6)
    header_end = len(body) if length is None else length
    if choice == 0:
        try:
            obj = mutate_json(orjson.loads(body[:header_end]), rng)
        except (orjson.JSONDecodeError, ValueError):
            return body, length  # an earlier mutation broke the JSON: keep it broken
        header = orjson.dumps(obj)
        return header + body[header_end:], None if length is None else len(header)
    data = bytearray(body)
    if choice == 1 and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 2:
        del data[rng.randrange(len(data) + 1) :]
    elif choice == 3:
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    elif choice == 4:
        length = rng.choice(
            [None, 0, -3, len(data), len(data) + 1, header_end + rng.randint(-3, 3)]
        )
    else:
        data[header_end:] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
    return bytes(data), length


def test_fuzzed_requests_raise_only_bad_request() -> None:
    rng = random.Random(20240611)
    outcomes = {"decoded": 0, "rejected": 0}
    for _ in range(600):
        body, length = rng.choice(seed_bodies())
        for _ in range(rng.randint(1, 2)):
            body, length = mutate(body, length, rng)
        raw_input = rng.choice([None, ("x", "INT8", [-1]), ("x", "BYTES", [1])])
        try:
            request = v2_rest.decode_request(body, length, raw_input)
        except BadRequest:
            outcomes["rejected"] += 1
            continue
        outcomes["decoded"] += 1
        for tensor in request.inputs:
            assert tensor.data.shape == tuple(tensor.shape)
    assert outcomes["decoded"] > 30 and outcomes["rejected"] > 300, outcomes


def test_fuzzed_responses_raise_only_bad_request() -> None:
    rng = random.Random(7)
    response = InferenceResponse("m", two_outputs().outputs, id="1")
    seeds = [
        v2_rest.encode_response(
            response, InferenceRequest([], parameters={"binary_data_output": True})
        ),
        v2_rest.encode_response(response, None),
    ]
    for _ in range(300):
        body, length = rng.choice(seeds)
        body, length = mutate(body, length, rng)
        with contextlib.suppress(BadRequest):
            v2_rest.decode_response(body, length)


# ---------------------------------------------------------------- tritonclient interop

INTEROP = ["BOOL", "UINT8", "UINT64", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]


@pytest.mark.parametrize("binary", [pytest.param(True, id="bin"), pytest.param(False, id="json")])
def test_tritonclient_request_decodes(binary: bool) -> None:
    http = pytest.importorskip("tritonclient.http")
    inputs = []
    for datatype in INTEROP:
        sample = SAMPLES[datatype]
        if datatype == "BYTES" and not binary:
            sample = np.array([["a", "b", "\u00e9"], ["x", "", "z"]], dtype=object)
        infer_input = http.InferInput(f"in_{datatype}", list(sample.shape), datatype)
        infer_input.set_data_from_numpy(sample, binary_data=binary)
        inputs.append(infer_input)
    outputs = [http.InferRequestedOutput("out", binary_data=binary)]

    body, length = http.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id="t1"
    )
    request = v2_rest.decode_request(body, length)

    assert (length is not None) is binary
    assert request.id == "t1"
    assert request.outputs == [RequestedOutput("out", {"binary_data": binary})]
    for datatype, tensor in zip(INTEROP, request.inputs, strict=True):
        expected = np.asarray(inputs[INTEROP.index(datatype)]._get_tensor()["shape"])
        assert tensor.shape == expected.tolist()
        want = SAMPLES[datatype]
        if datatype == "BYTES" and not binary:
            want = np.array([[b"a", b"b", "\u00e9".encode()], [b"x", b"", b"z"]], dtype=object)
        assert tensor.data.tolist() == want.tolist(), datatype


def test_tritonclient_without_outputs_asks_for_binary_outputs() -> None:
    http = pytest.importorskip("tritonclient.http")
    infer_input = http.InferInput("x", [2], "FP32")
    infer_input.set_data_from_numpy(np.array([1.5, 2.5], np.float32))

    request = v2_rest.decode_request(
        *http.InferenceServerClient.generate_request_body([infer_input])
    )
    body, length = v2_rest.encode_response(InferenceResponse("m", [spec_output()]), request)

    assert request.parameters == {"binary_data_output": True}
    assert length is not None
    result = http.InferenceServerClient.parse_response_body(body, header_length=length)
    np.testing.assert_array_equal(result.as_numpy("output0"), spec_output().data)


@pytest.mark.parametrize("binary", [pytest.param(True, id="bin"), pytest.param(False, id="json")])
def test_tritonclient_parses_our_response(binary: bool) -> None:
    http = pytest.importorskip("tritonclient.http")
    outputs = [Tensor(f"out_{d}", d, [2, 3], SAMPLES[d]) for d in INTEROP]
    request = InferenceRequest([], parameters={"binary_data_output": binary})

    body, length = v2_rest.encode_response(
        InferenceResponse("m", outputs, model_version="1", id="t1"), request
    )
    result = http.InferenceServerClient.parse_response_body(body, header_length=length)

    assert result.get_response()["id"] == "t1"
    for tensor in outputs:
        got = result.as_numpy(tensor.name)
        if tensor.datatype == "BYTES" and not binary:
            assert got.tolist() == [[v.decode() for v in row] for row in tensor.data.tolist()]
            continue
        assert got.reshape(tensor.shape).tolist() == tensor.data.tolist(), tensor.datatype
