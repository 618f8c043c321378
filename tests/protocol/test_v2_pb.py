"""The Open Inference Protocol gRPC codec: ``inference`` protobuf <-> the V2 types.

Round trips cover every datatype both typed and raw; the malformed cases check that
the client is told which tensor is wrong; a seeded fuzz checks that nothing but
``BadRequest`` escapes the decoder. The tritonclient tests run tritonclient in a
subprocess: its ``inference.*`` messages would clash with ours in one descriptor pool.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from infergraph.errors import BadRequest
from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.v2_pb import (
    decode_parameters,
    decode_raw,
    decode_request,
    decode_response,
    encode_parameters,
    encode_raw,
    encode_request,
    encode_response,
)
from infergraph.protocol.v2_types import (
    DATATYPES,
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)


def wire(message: Any) -> Any:
    """``message`` after a trip through its serialised bytes, as a peer would receive it."""
    return type(message).FromString(message.SerializeToString())


SAMPLES: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([0, 1, 255], dtype=np.uint8),
    "UINT16": np.array([[0, 65535], [7, 300]], dtype=np.uint16),
    "UINT32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1, 2**63], dtype=np.uint64),
    "INT8": np.array([-128, 0, 127], dtype=np.int8),
    "INT16": np.array([-32768, 32767], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([-(2**63), 2**63 - 1, 0], dtype=np.int64),
    "FP16": np.array([[0.5, -1.0], [65504.0, np.inf]], dtype=np.float16),
    "FP32": np.array([1.5, -0.0, 3.4e38, np.nan], dtype=np.float32),
    "FP64": np.array([[1e-300, -2.5, np.inf]], dtype=np.float64),
    "BYTES": np.array([b"a", b"", b"\x00\xff\x00", "h\u00e9".encode()], dtype=object),
}
assert set(SAMPLES) == set(DATATYPES)

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

ALL_PARAMETERS = {"flag": True, "count": -5, "label": "x", "ratio": 0.25, "big": 2**64 - 1}
"""One parameter of every InferParameter kind: bool, int64, string, double, uint64."""


def sample_tensor(datatype: str, name: str = "x", **parameters: Any) -> Tensor:
    array = SAMPLES[datatype]
    return Tensor(name, datatype, list(array.shape), array, dict(parameters))


def assert_tensor_equal(got: Tensor, want: Tensor) -> None:
    assert (got.name, got.datatype, got.shape) == (want.name, want.datatype, want.shape)
    assert got.data.dtype == DATATYPES[want.datatype]
    assert list(got.data.shape) == want.shape
    if want.datatype == "BYTES":
        assert got.data.ravel().tolist() == want.data.ravel().tolist()
        assert all(type(v) is bytes for v in got.data.ravel())
    else:
        np.testing.assert_array_equal(got.data, want.data)
    assert got.parameters == want.parameters


def raw_request(*inputs: Tensor, **fields: Any) -> pb.ModelInferRequest:
    return encode_request(InferenceRequest(list(inputs), **fields), raw=True)


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [pytest.param(False, id="typed"), pytest.param(True, id="raw")])
@pytest.mark.parametrize("datatype", [pytest.param(d, id=d) for d in DATATYPES])
def test_request_round_trip(datatype: str, raw: bool) -> None:
    tensor = sample_tensor(datatype, unit="cm")
    request = InferenceRequest([tensor], id="r1", model_name="m", model_version="2")
    proto = wire(encode_request(request, raw=raw))
    goes_raw = raw or datatype == "FP16"  # FP16 has no typed field
    assert len(proto.raw_input_contents) == (1 if goes_raw else 0)
    assert proto.inputs[0].HasField("contents") == (not goes_raw)
    if not goes_raw:
        assert [f.name for f, _ in proto.inputs[0].contents.ListFields()] == [TYPED_FIELD[datatype]]
    decoded = decode_request(proto)
    assert (decoded.id, decoded.model_name, decoded.model_version) == ("r1", "m", "2")
    assert decoded.outputs is None
    assert_tensor_equal(decoded.inputs[0], tensor)


@pytest.mark.parametrize("raw", [pytest.param(False, id="typed"), pytest.param(True, id="raw")])
@pytest.mark.parametrize("datatype", [pytest.param(d, id=d) for d in DATATYPES])
def test_response_round_trip(datatype: str, raw: bool) -> None:
    request = encode_request(InferenceRequest([sample_tensor("INT32", "in")]), raw=raw)
    tensor = sample_tensor(datatype, "out", note="ok")
    response = InferenceResponse("m", [tensor], model_version="3", parameters={"n": 1})
    proto = wire(encode_response(response, request))
    assert len(proto.raw_output_contents) == (1 if raw or datatype == "FP16" else 0)
    decoded = decode_response(proto)
    assert (decoded.model_name, decoded.model_version, decoded.parameters) == ("m", "3", {"n": 1})
    assert_tensor_equal(decoded.outputs[0], tensor)


@pytest.mark.parametrize(
    "shape",
    [pytest.param([], id="scalar"), pytest.param([0], id="empty"), pytest.param([2, 0], id="2x0")],
)
@pytest.mark.parametrize("raw", [pytest.param(False, id="typed"), pytest.param(True, id="raw")])
@pytest.mark.parametrize("datatype", [pytest.param(d, id=d) for d in DATATYPES])
def test_scalar_and_empty_tensors_round_trip(datatype: str, raw: bool, shape: list[int]) -> None:
    flat = SAMPLES[datatype].ravel()[: 1 if shape == [] else 0]
    tensor = Tensor("x", datatype, shape, flat.reshape(shape))
    decoded = decode_request(wire(encode_request(InferenceRequest([tensor]), raw=raw)))
    assert_tensor_equal(decoded.inputs[0], tensor)


def test_the_raw_layout_is_little_endian_row_major() -> None:
    tensor = Tensor("x", "FP32", [2, 2], np.array([[1, 2], [3, 4]], dtype=">f4"))
    assert encode_raw(tensor, "x") == struct.pack("<4f", 1, 2, 3, 4)
    flags = Tensor("b", "BOOL", [3], np.array([True, False, True]))
    assert encode_raw(flags, "b") == b"\x01\x00\x01"
    decoded = decode_raw("INT16", [2], struct.pack("<2h", -2, 513), "x")
    assert decoded.dtype == np.int16 and decoded.flags.writeable
    assert decoded.tolist() == [-2, 513]


def test_bytes_raw_elements_carry_4_byte_little_endian_length_prefixes() -> None:
    elements = [b"hello", b"", b"\x00" * 3, bytes(range(256))]
    raw = b"".join(struct.pack("<I", len(e)) + e for e in elements)
    tensor = Tensor("s", "BYTES", [2, 2], np.array(elements, dtype=object).reshape(2, 2))
    assert encode_raw(tensor, "s") == raw
    decoded = decode_raw("BYTES", [2, 2], raw, "s")
    assert decoded.shape == (2, 2) and decoded.ravel().tolist() == elements


def test_bytes_tensors_accept_str_and_fixed_width_arrays_on_encode() -> None:
    for data in (np.array(["ab", "\u00e9"]), np.array([b"ab", "\u00e9".encode()], dtype="S")):
        tensor = Tensor("s", "BYTES", [2], data)
        for raw in (False, True):
            decoded = decode_request(wire(encode_request(InferenceRequest([tensor]), raw=raw)))
            assert decoded.inputs[0].data.tolist() == [b"ab", "\u00e9".encode()]


def test_bytes_data_may_be_a_list_of_bytes_like_objects() -> None:
    elements = [b"a\x00", bytearray(b"b"), memoryview(b"c"), "d"]
    tensor = Tensor("s", "BYTES", [4], elements)  # type: ignore[arg-type]
    decoded = decode_raw("BYTES", [4], encode_raw(tensor, "s"), "s")
    assert decoded.tolist() == [b"a\x00", b"b", b"c", b"d"]


def test_encoding_an_unknown_datatype_is_refused() -> None:
    tensor = Tensor("x", "BF16", [1], np.zeros(1, np.uint16))
    with pytest.raises(BadRequest, match="input 'x': unknown datatype 'BF16'"):
        encode_request(InferenceRequest([tensor]), raw=True)


def test_encode_casts_data_of_the_same_kind_to_the_declared_datatype() -> None:
    tensor = Tensor("x", "FP32", [2], np.array([0.5, 2.0], dtype=np.float64))
    assert encode_raw(tensor, "x") == struct.pack("<2f", 0.5, 2.0)


# -- requests and responses ---------------------------------------------------------------


def test_requested_outputs_are_returned_alone_and_in_the_requested_order() -> None:
    request = InferenceRequest(
        [sample_tensor("FP32")],
        outputs=[RequestedOutput("c", {"binary_data": True}), RequestedOutput("a")],
    )
    proto = wire(encode_request(request, raw=True))
    decoded = decode_request(proto)
    assert decoded.outputs == [RequestedOutput("c", {"binary_data": True}), RequestedOutput("a")]
    response = InferenceResponse("m", [sample_tensor("INT8", n) for n in "abc"])
    encoded = wire(encode_response(response, proto))
    assert [o.name for o in encoded.outputs] == ["c", "a"]
    assert len(encoded.raw_output_contents) == 2


def test_a_requested_output_the_model_lacks_is_a_bad_request() -> None:
    proto = raw_request(sample_tensor("FP32"), outputs=[RequestedOutput("nope")])
    response = InferenceResponse("m", [sample_tensor("INT8", "y")])
    with pytest.raises(BadRequest, match=r"output 'nope' was requested.*'y'"):
        encode_response(response, proto)


def test_no_requested_outputs_returns_every_output() -> None:
    response = InferenceResponse("m", [sample_tensor("INT8", n) for n in "ab"])
    encoded = encode_response(response, raw_request(sample_tensor("FP32")))
    assert [o.name for o in encoded.outputs] == ["a", "b"]


def test_the_request_id_is_echoed_unless_the_response_sets_its_own() -> None:
    proto = raw_request(sample_tensor("FP32"), id="42", model_name="m")
    assert encode_response(InferenceResponse("", []), proto).id == "42"
    assert encode_response(InferenceResponse("", []), proto).model_name == "m"
    assert encode_response(InferenceResponse("m", [], id="own"), proto).id == "own"
    assert decode_request(raw_request(sample_tensor("FP32"))).id is None


def test_a_typed_request_gets_a_typed_response_except_fp16_which_makes_it_all_raw() -> None:
    typed = encode_request(InferenceRequest([sample_tensor("FP32")]), raw=False)
    only_fp32 = encode_response(InferenceResponse("m", [sample_tensor("FP32", "y")]), typed)
    assert not only_fp32.raw_output_contents
    assert list(only_fp32.outputs[0].contents.fp32_contents)[:2] == [1.5, -0.0]
    mixed = InferenceResponse("m", [sample_tensor("FP32", "y"), sample_tensor("FP16", "h")])
    encoded = encode_response(mixed, typed)
    assert len(encoded.raw_output_contents) == 2
    assert not any(o.HasField("contents") for o in encoded.outputs)


def test_parameters_of_every_kind_round_trip_at_every_level() -> None:
    request = InferenceRequest(
        [sample_tensor("FP32", **ALL_PARAMETERS)],
        parameters=ALL_PARAMETERS,
        outputs=[RequestedOutput("y", ALL_PARAMETERS)],
    )
    proto = wire(encode_request(request, raw=True))
    kinds = {k: v.WhichOneof("parameter_choice") for k, v in proto.parameters.items()}
    assert kinds == {
        "flag": "bool_param",
        "count": "int64_param",
        "label": "string_param",
        "ratio": "double_param",
        "big": "uint64_param",
    }
    decoded = decode_request(proto)
    assert decoded.parameters == ALL_PARAMETERS
    assert decoded.inputs[0].parameters == ALL_PARAMETERS
    assert decoded.outputs == [RequestedOutput("y", ALL_PARAMETERS)]
    response = InferenceResponse("m", [sample_tensor("INT8", "y", **ALL_PARAMETERS)])
    response.parameters = ALL_PARAMETERS
    back = decode_response(wire(encode_response(response, proto)))
    assert back.parameters == ALL_PARAMETERS
    assert back.outputs[0].parameters == ALL_PARAMETERS
    assert all(type(back.parameters[k]) is type(v) for k, v in ALL_PARAMETERS.items())


def test_a_small_uint64_parameter_decodes_to_an_int() -> None:
    params: Any = pb.ModelInferRequest().parameters
    params["priority"].uint64_param = 3  # as tritonclient sends priority
    assert decode_parameters(params, "request parameter") == {"priority": 3}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(2**64, "fits neither int64 nor uint64", id="too-big"),
        pytest.param(-(2**63) - 1, "fits neither int64 nor uint64", id="too-small"),
        pytest.param(b"raw", "a bytes cannot be sent", id="bytes"),
        pytest.param(None, "a NoneType cannot be sent", id="none"),
    ],
)
def test_parameters_that_no_infer_parameter_holds_are_refused(value: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=f"request parameter 'k': .*{match}"):
        encode_parameters({"k": value}, pb.ModelInferRequest().parameters, "request parameter")


def test_numpy_scalars_encode_as_parameters() -> None:
    params: Any = pb.ModelInferRequest().parameters
    encode_parameters({"a": np.int32(3), "b": np.float32(0.5), "c": np.bool_(True)}, params, "p")
    assert decode_parameters(params, "p") == {"a": 3, "b": 0.5, "c": True}


def test_encoding_data_that_does_not_fill_its_shape_is_refused() -> None:
    request = encode_request(InferenceRequest([sample_tensor("FP32")]), raw=True)
    bad = InferenceResponse("m", [Tensor("y", "FP32", [5], np.zeros(4, np.float32))])
    with pytest.raises(BadRequest, match=r"output 'y': data has 4 elements but shape \[5\]"):
        encode_response(bad, request)
    not_bytes = InferenceResponse("m", [Tensor("s", "BYTES", [1], np.array([7], dtype=object))])
    with pytest.raises(BadRequest, match="output 's': BYTES element 0 is a int"):
        encode_response(not_bytes, request)
    floats_as_ints = InferenceResponse("m", [Tensor("i", "INT32", [1], np.array([0.5]))])
    with pytest.raises(BadRequest, match="output 'i': data cannot be held as INT32"):
        encode_response(floats_as_ints, request)


# -- malformed requests -------------------------------------------------------------------


def typed_input(datatype: str, shape: list[int], field: str, values: list[Any]) -> Any:
    proto = pb.ModelInferRequest()
    tensor = proto.inputs.add(name="x", datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return proto


def raw_input(datatype: str, shape: list[int], raw: bytes) -> Any:
    proto = pb.ModelInferRequest(raw_input_contents=[raw])
    proto.inputs.add(name="x", datatype=datatype, shape=shape)
    return proto


def both_contents_and_raw() -> Any:
    proto = raw_input("FP32", [1], struct.pack("<f", 1))
    proto.inputs[0].contents.fp32_contents.append(1.0)
    return proto


def raw_for_one_of_two_inputs() -> Any:
    proto = raw_input("FP32", [1], struct.pack("<f", 1))
    proto.inputs.add(name="y", datatype="FP32", shape=[1])
    return proto


def duplicate_names() -> Any:
    proto = typed_input("INT32", [1], "int_contents", [1])
    proto.inputs.add(name="x", datatype="INT32", shape=[0])
    return proto


def empty_parameter() -> Any:
    proto = typed_input("INT32", [1], "int_contents", [1])
    proto.inputs[0].parameters["p"].SetInParent()
    return proto


MALFORMED = [
    pytest.param(
        typed_input("FP32", [2, 2], "fp32_contents", [1.0, 2.0, 3.0]),
        r"input 'x': 3 values in contents.fp32_contents do not fill shape \[2, 2\] \(4 elements\)",
        id="typed-count-mismatch",
    ),
    pytest.param(
        raw_input("FP32", [3], b"\x00" * 8),
        r"input 'x': shape \[3\] of FP32 needs 12 bytes of binary data, got 8",
        id="raw-count-mismatch",
    ),
    pytest.param(
        both_contents_and_raw(),
        "contents field must not be specified when using raw_input_contents for 'x'",
        id="contents-and-raw",
    ),
    pytest.param(
        raw_input("FP32", [2], b"\x00" * 7),
        r"input 'x': shape \[2\] of FP32 needs 8 bytes of binary data, got 7",
        id="raw-size-not-a-multiple",
    ),
    pytest.param(
        raw_input("BOOL", [3], b"\x01\x00\x02"),
        "input 'x': BOOL byte 2 is 2; binary BOOL is 0 or 1",
        id="raw-bool-not-0-or-1",
    ),
    pytest.param(
        typed_input("FLOAT", [1], "fp32_contents", [1.0]),
        "input 'x': unknown datatype 'FLOAT'",
        id="unknown-datatype",
    ),
    pytest.param(
        raw_input("BF16", [1], b"\x00\x00"),
        "input 'x': unknown datatype 'BF16'",
        id="bf16-unsupported",
    ),
    pytest.param(
        typed_input("FP16", [1], "fp32_contents", [1.0]),
        "input 'x': FP16 has no typed contents field; send it as raw contents",
        id="fp16-typed",
    ),
    pytest.param(
        typed_input("FP16", [2], "fp32_contents", []),
        "input 'x': FP16 has no typed contents field",
        id="fp16-without-raw",
    ),
    pytest.param(
        raw_input("BYTES", [2], struct.pack("<I", 1) + b"a" + b"\x02\x00"),
        r"input 'x': BYTES element 1 has a truncated 4-byte length prefix \(2 bytes left\)",
        id="bytes-truncated-prefix",
    ),
    pytest.param(
        raw_input("BYTES", [1], struct.pack("<I", 10) + b"abc"),
        "input 'x': BYTES element 0 claims 10 bytes but only 3 remain",
        id="bytes-truncated-element",
    ),
    pytest.param(
        raw_input("BYTES", [3], struct.pack("<I", 1) + b"a"),
        r"input 'x': shape needs 3 BYTES elements, binary data holds 1",
        id="bytes-raw-count-mismatch",
    ),
    pytest.param(
        typed_input("BYTES", [2], "bytes_contents", [b"a"]),
        r"input 'x': 1 values in contents.bytes_contents do not fill shape \[2\]",
        id="bytes-typed-count-mismatch",
    ),
    pytest.param(
        typed_input("FP32", [1], "fp64_contents", [1.0]),
        "input 'x': FP32 data goes in fp32_contents, not fp64_contents",
        id="wrong-typed-field",
    ),
    pytest.param(
        typed_input("INT8", [2], "int_contents", [1, 200]),
        r"input 'x': contents.int_contents holds values outside the INT8 range \[-128, 127\]",
        id="int8-out-of-range",
    ),
    pytest.param(
        typed_input("UINT16", [1], "uint_contents", [70000]),
        "outside the UINT16 range",
        id="uint16-out-of-range",
    ),
    pytest.param(
        typed_input("INT32", [2, -1], "int_contents", [1, 2]),
        r"input 'x': shape \[2, -1\] has a negative dimension",
        id="negative-dimension",
    ),
    pytest.param(
        typed_input("INT32", [0, 2**62, 2**62], "int_contents", []),
        r"input 'x': shape \[0, 4611686018427387904, 4611686018427387904\] cannot be represented",
        id="empty-shape-too-large",
    ),
    pytest.param(
        raw_for_one_of_two_inputs(),
        "raw_input_contents has 1 entries for 2 inputs; send one per input",
        id="raw-entries-not-one-per-input",
    ),
    pytest.param(duplicate_names(), "input 'x': the name appears twice", id="duplicate-name"),
    pytest.param(empty_parameter(), "input 'x' parameter 'p' holds no value", id="empty-parameter"),
]


@pytest.mark.parametrize(("proto", "match"), MALFORMED)
def test_malformed_requests_are_bad_requests_naming_the_input(proto: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        decode_request(wire(proto))


def test_malformed_responses_name_the_output() -> None:
    proto = pb.ModelInferResponse(raw_output_contents=[b"\x00" * 3])
    proto.outputs.add(name="y", datatype="INT16", shape=[2])
    with pytest.raises(
        BadRequest, match=r"output 'y': shape \[2\] of INT16 needs 4 bytes of binary data, got 3"
    ):
        decode_response(proto)


# -- fuzz ---------------------------------------------------------------------------------

FUZZ_DATATYPES = [*DATATYPES, "BF16", "FOO", ""]
FUZZ_DIMS = [-1, 0, 1, 2, 3, 2**40, 2**62]


def fuzz_values(rng: np.random.Generator, field: str, n: int) -> list[Any]:
    if field == "bool_contents":
        return rng.integers(0, 2, n).astype(bool).tolist()
    if field == "bytes_contents":
        return [rng.bytes(int(k)) for k in rng.integers(0, 6, n)]
    if field in ("fp32_contents", "fp64_contents"):
        return (rng.standard_normal(n) * 1e3).tolist()
    low, high = {
        "int_contents": (-(2**31), 2**31),
        "uint_contents": (0, 2**32),
        "int64_contents": (-(2**63), 2**63),
        "uint64_contents": (0, 2**64),
    }[field]
    return [int(v) for v in rng.integers(low, high, n, dtype=np.uint64 if low == 0 else np.int64)]


def random_raw(rng: np.random.Generator, datatype: str, shape: list[int]) -> bytes:
    """Mostly the right size, sometimes not; BYTES with mostly sane length prefixes."""
    if datatype == "BYTES" and rng.random() < 0.7:
        parts = [struct.pack("<I", int(k)) + rng.bytes(int(k)) for k in rng.integers(0, 4, 3)]
        return b"".join(parts)[: int(rng.integers(0, 40))]
    size = DATATYPES[datatype].itemsize if datatype in DATATYPES and datatype != "BYTES" else 1
    count = int(np.prod(shape)) if min(shape, default=0) >= 0 and max(shape, default=0) < 9 else 2
    return rng.bytes(count * size + int(rng.choice([0, 0, 0, 1, -1])) * (count > 0))


def random_request(rng: np.random.Generator) -> Any:
    proto = pb.ModelInferRequest(id=str(rng.integers(100)))
    raw = rng.random() < 0.5
    for _ in range(int(rng.integers(0, 4))):
        datatype = str(rng.choice(FUZZ_DATATYPES))
        dims = FUZZ_DIMS[:4] if rng.random() < 0.8 else FUZZ_DIMS
        shape = [int(rng.choice(dims)) for _ in range(int(rng.integers(0, 4)))]
        tensor = proto.inputs.add(name=str(rng.choice(list("abc"))), datatype=datatype)
        tensor.shape.extend(shape)
        if raw:
            proto.raw_input_contents.append(random_raw(rng, datatype, shape))
        if not raw or rng.random() < 0.05:
            field = TYPED_FIELD.get(datatype, "fp32_contents")
            if rng.random() < 0.1:
                field = str(rng.choice(sorted(set(TYPED_FIELD.values()))))
            n = int(np.prod(shape)) if all(0 <= d < 9 for d in shape) else 1
            n = max(0, n + int(rng.choice([0, 0, 0, 1, -1])))
            getattr(tensor.contents, field).extend(fuzz_values(rng, field, n))
        if rng.random() < 0.2:
            if rng.random() < 0.2:
                tensor.parameters["p"].SetInParent()
            tensor.parameters["q"].int64_param = int(rng.integers(-5, 5))
    if rng.random() < 0.05 and proto.raw_input_contents:
        proto.raw_input_contents.append(b"")
    return proto


def check_decodes_or_refuses(proto: Any) -> bool:
    """Decode; on success the result must survive a re-encoding. True if it decoded."""
    try:
        decoded = decode_request(proto)
    except BadRequest:
        return False
    for tensor in decoded.inputs:
        assert list(tensor.data.shape) == tensor.shape
        assert tensor.data.dtype == DATATYPES[tensor.datatype]
    again = decode_request(wire(encode_request(decoded, raw=bool(proto.raw_input_contents))))
    for got, want in zip(again.inputs, decoded.inputs, strict=True):
        assert_tensor_equal(got, want)
    return True


def test_fuzzed_requests_decode_or_raise_only_bad_request() -> None:
    rng = np.random.default_rng(20240607)
    outcomes = [check_decodes_or_refuses(wire(random_request(rng))) for _ in range(1500)]
    assert 100 < sum(outcomes) < len(outcomes) - 100, "the fuzz must reach both outcomes"


def test_mutated_request_bytes_decode_or_raise_only_bad_request() -> None:
    rng = np.random.default_rng(7)
    seeds = [random_request(rng).SerializeToString() for _ in range(40)]
    seeds.append(encode_request(InferenceRequest([sample_tensor("BYTES")]), raw=True))
    seeds[-1] = seeds[-1].SerializeToString()
    parsed = 0
    for _ in range(3000):
        data = bytearray(seeds[int(rng.integers(len(seeds)))])
        for _ in range(int(rng.integers(1, 4))):
            if data:
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        try:
            proto = pb.ModelInferRequest.FromString(bytes(data))
        except DecodeError:
            continue
        parsed += 1
        check_decodes_or_refuses(proto)
    assert parsed > 500


# -- the stubs and tritonclient -----------------------------------------------------------


def test_the_stubs_are_package_inference_under_an_infergraph_file_path() -> None:
    assert pb.DESCRIPTOR.package == "inference"
    assert pb.DESCRIPTOR.name == "infergraph/protocol/proto/inference.proto"
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert [m.name for m in service.methods] == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    ]


DESCRIBE = """
def describe(file):
    '''Every message's fields (name, number, type, label, message type, oneof) by full name.'''
    described = {}

    def walk(message):
        described[message.full_name] = sorted(
            [f.name, f.number, f.type, f.is_repeated, f.message_type.full_name if f.message_type
             else "", f.containing_oneof.name if f.containing_oneof else ""]
            for f in message.fields
        )
        for nested in message.nested_types:
            walk(nested)

    for message in file.message_types_by_name.values():
        walk(message)
    service = file.services_by_name["GRPCInferenceService"]
    described["rpc"] = sorted(
        [m.name, m.input_type.full_name, m.output_type.full_name] for m in service.methods
    )
    return described
"""

TRITON_PROBE = (
    DESCRIBE
    + """
import base64, json, sys

try:
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import service_pb2
    from tritonclient.grpc._utils import _get_inference_request
    from tritonclient.utils import triton_to_np_dtype
except ImportError as exc:
    print(json.dumps({"missing": str(exc)}))
    sys.exit(0)

job = json.load(sys.stdin)
inputs = []
for name, spec in job["inputs"].items():
    if spec["datatype"] == "BYTES":
        array = np.array([base64.b64decode(v) for v in spec["values"]], dtype=object)
    else:
        array = np.array(spec["values"], dtype=triton_to_np_dtype(spec["datatype"]))
    tensor = grpcclient.InferInput(name, spec["shape"], spec["datatype"])
    tensor.set_data_from_numpy(array.reshape(spec["shape"]))
    inputs.append(tensor)
# What InferenceServerClient.infer() sends, built without a server to send it to.
request = _get_inference_request(
    model_name="m", inputs=inputs, model_version="", request_id="7",
    outputs=[grpcclient.InferRequestedOutput(n) for n in job["requested"]],
    sequence_id=0, sequence_start=False, sequence_end=False, priority=3, timeout=None,
    parameters={"flag": True, "count": -5, "label": "x", "ratio": 0.25},
)
result = grpcclient.InferResult(
    service_pb2.ModelInferResponse.FromString(base64.b64decode(job["response"]))
)
read = {}
for output in result.get_response().outputs:
    array = result.as_numpy(output.name)
    values = array.ravel().tolist()
    if output.datatype == "BYTES":
        values = [base64.b64encode(v).decode() for v in values]
    read[output.name] = {"dtype": str(array.dtype), "shape": list(array.shape), "values": values}
print(json.dumps({
    "request": base64.b64encode(request.SerializeToString()).decode(),
    "read": read,
    "id": result.get_response().id,
    "descriptors": describe(service_pb2.DESCRIPTOR),
}))
"""
)

TRITON_TYPES = ["BOOL", "UINT8", "UINT64", "INT8", "INT16", "INT64", "FP16", "FP32", "BYTES"]


def as_json_values(tensor: Tensor) -> list[Any]:
    values = tensor.data.ravel().tolist()
    if tensor.datatype == "BYTES":
        return [base64.b64encode(v).decode() for v in values]
    return values


@pytest.fixture(scope="module")
def triton_probe() -> dict[str, Any]:
    """Run the probe once: tritonclient builds a request and reads our response."""
    finite = {d: SAMPLES[d] for d in TRITON_TYPES}
    finite["FP16"] = np.array([[0.5, -1.0], [65504.0, 2.0]], dtype=np.float16)
    tensors = [Tensor(d.lower(), d, list(a.shape), a) for d, a in finite.items()]
    our_request = encode_request(InferenceRequest([tensors[0]], id="7"), raw=True)
    response = encode_response(InferenceResponse("m", tensors), our_request)
    job = {
        "inputs": {
            t.name: {"datatype": t.datatype, "shape": t.shape, "values": as_json_values(t)}
            for t in tensors
        },
        "requested": ["fp32", "bytes"],
        "response": base64.b64encode(response.SerializeToString()).decode(),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TRITON_PROBE)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    probed: dict[str, Any] = json.loads(result.stdout)
    if "missing" in probed:
        pytest.skip(f"tritonclient[grpc] is not installed: {probed['missing']}")
    probed["tensors"] = tensors
    return probed


@pytest.mark.slow
def test_our_proto_matches_tritonclients_core_messages_field_for_field(
    triton_probe: dict[str, Any],
) -> None:
    namespace: dict[str, Any] = {}
    exec(DESCRIBE, namespace)
    ours = json.loads(json.dumps(namespace["describe"](pb.DESCRIPTOR)))
    theirs = triton_probe["descriptors"]
    ours_rpcs, their_rpcs = ours.pop("rpc"), theirs.pop("rpc")
    assert [r for r in their_rpcs if r[0] in {o[0] for o in ours_rpcs}] == ours_rpcs
    assert {name: theirs.get(name) for name in ours} == ours


@pytest.mark.slow
def test_a_tritonclient_request_decodes(triton_probe: dict[str, Any]) -> None:
    proto = pb.ModelInferRequest.FromString(base64.b64decode(triton_probe["request"]))
    assert len(proto.raw_input_contents) == len(proto.inputs)  # tritonclient sends raw
    decoded = decode_request(proto)
    assert (decoded.id, decoded.model_name) == ("7", "m")
    assert decoded.parameters == {
        "flag": True,
        "count": -5,
        "label": "x",
        "ratio": 0.25,
        "priority": 3,
    }
    assert decoded.outputs == [RequestedOutput("fp32"), RequestedOutput("bytes")]
    for got, want in zip(decoded.inputs, triton_probe["tensors"], strict=True):
        assert_tensor_equal(got, want)


@pytest.mark.slow
def test_tritonclient_reads_our_raw_response(triton_probe: dict[str, Any]) -> None:
    assert triton_probe["id"] == "7"
    read = triton_probe["read"]
    for tensor in triton_probe["tensors"]:
        seen = read[tensor.name]
        assert seen["shape"] == tensor.shape
        np.testing.assert_array_equal(seen["values"], as_json_values(tensor))  # NaN == NaN
        if tensor.datatype != "BYTES":
            assert seen["dtype"] == str(DATATYPES[tensor.datatype])
