"""The fast ListValue codec agrees with protobuf's own conversions, byte for byte."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import json_format, struct_pb2

from infergraph.errors import BadRequest, InferGraphError
from infergraph.protocol import seldon_pb
from infergraph.protocol.listvalue import (
    FAST_FROM,
    array_from_list_value,
    fill_list_value,
    value_to_python,
)
from infergraph.protocol.message import DataKind, Message
from infergraph.protocol.proto import prediction_pb2
from infergraph.testing import serve_grpc

RNG = np.random.default_rng(7)

ARRAYS = {
    "one row": np.array([[5.1, 3.5, 1.4, 0.2]]),
    "vector": RNG.random(FAST_FROM * 2),
    "matrix": RNG.random((100, 30)),
    "one wide row": RNG.random((1, 300)),
    "one column": RNG.random((FAST_FROM + 3, 1)),
    "rank 3": np.arange(2 * 3 * 40, dtype=np.float64).reshape(2, 3, 40),
    "rank 4": RNG.random((2, 2, 3, 20)),
    "int64": RNG.integers(-(2**40), 2**40, (16, 16)),
    "uint8": RNG.integers(0, 255, (20, 20)).astype(np.uint8),
    "float32": RNG.random((30, 30)).astype(np.float32),
    "float16": RNG.random((10, 10)).astype(np.float16),
    "extremes": np.array([[1e308, -1e-308, 0.0, -0.0] * 20]),
    "long rows": RNG.random((3, 5000)),  # multi-byte varint lengths
}


def protobuf_list(data: Any) -> struct_pb2.ListValue:
    out = struct_pb2.ListValue()
    out.extend(data.tolist() if isinstance(data, np.ndarray) else data)
    return out


@pytest.mark.parametrize("name", ARRAYS)
def test_arrays_encode_as_protobuf_would(name: str) -> None:
    array = ARRAYS[name]
    ours = struct_pb2.ListValue()
    fill_list_value(ours, array)
    assert ours.SerializeToString() == protobuf_list(array).SerializeToString()


@pytest.mark.parametrize("name", ARRAYS)
def test_arrays_decode_to_the_values_protobuf_reads(name: str) -> None:
    array = ARRAYS[name]
    decoded = array_from_list_value(protobuf_list(array))
    expected = np.array(json_format.MessageToDict(protobuf_list(array)))
    assert decoded.shape == expected.shape == array.shape
    assert decoded.dtype == np.float64
    np.testing.assert_array_equal(decoded, expected)


def test_nan_and_infinities_survive_where_message_to_dict_refuses_them() -> None:
    array = np.array([[np.nan, np.inf, -np.inf, 1.0]] * FAST_FROM)
    listed = protobuf_list(array)
    # protobuf 5 and later refuse NaN and infinities in a Value; 4.x writes them
    with contextlib.suppress(ValueError):
        json_format.MessageToDict(listed)
    for source in (listed, protobuf_list(array[:1])):  # the bytes route and the slow one
        decoded = array_from_list_value(source)
        np.testing.assert_array_equal(decoded, array[: len(decoded)])


@pytest.mark.parametrize(
    "data",
    [
        [["a", "b"]] * 40,
        [[True, False]] * 40,
        [[1.0, "x"]] * 40,
        [[1.0] * 40, [2.0] * 39 + [None]],
        [[{"k": [1.0, 2.0]}, 3.0]] * 40,
        [[[1.0, 2.0], [3.0, 4.0]]] * 40,
        [1.0] * 70 + ["tail"],
    ],
    ids=["strings", "bools", "mixed", "null", "struct", "rank3", "vector-mixed"],
)
def test_other_contents_decode_as_numpy_reads_the_python_values(data: list[Any]) -> None:
    listed = protobuf_list(data)
    expected = np.array(json_format.MessageToDict(listed), dtype=object)
    decoded = array_from_list_value(listed)
    assert decoded.shape == expected.shape
    assert decoded.tolist() == np.array(json_format.MessageToDict(listed)).tolist()


def test_ragged_rows_are_a_value_error_and_a_bad_request() -> None:
    ragged = protobuf_list([[1.0] * 40, [1.0] * 39])
    with pytest.raises(ValueError):
        array_from_list_value(ragged)
    message = seldon_pb.pb.SeldonMessage()
    message.data.ndarray.ParseFromString(ragged.SerializeToString())  # another pool: by wire
    with pytest.raises(BadRequest, match="ragged"):
        seldon_pb.decode_message(message)


def test_values_read_as_message_to_dict_does() -> None:
    value = struct_pb2.Value()
    json_format.ParseDict({"a": [1, 2.5, "x", True, None, {"b": []}]}, value)
    assert value_to_python(value) == json_format.MessageToDict(value)


def test_seldon_messages_round_trip_through_the_fast_route() -> None:
    array = ARRAYS["matrix"]
    encoded = seldon_pb.encode_message(Message(DataKind.NDARRAY, array, ["a"] * 30))
    wire = seldon_pb.pb.SeldonMessage.FromString(encoded.SerializeToString())
    decoded = seldon_pb.decode_message(wire)
    assert decoded.kind is DataKind.NDARRAY
    np.testing.assert_array_equal(decoded.data, array)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        pytest.param(np.array([b"\xff"], dtype=object), "a bytes (b'\\xff')", id="bytes"),
        pytest.param([["ok", {"k": [1, b"x"]}]], "a bytes (b'x')", id="nested-bytes"),
        pytest.param([1.0, 1 + 2j], "a complex", id="complex"),
    ],
)
def test_what_a_list_value_cannot_hold_is_named(data: Any, named: str) -> None:
    # found by tests/fuzz: an echoed DT_STRING tftensor answered "ValueError: Unexpected type"
    with pytest.raises(InferGraphError) as caught:
        fill_list_value(struct_pb2.ListValue(), data)
    assert f"an ndarray answer holds {named}" in caught.value.message
    assert "which a protobuf ListValue cannot carry" in caught.value.message


def test_grpc_answer_of_bytes_in_an_ndarray_says_why() -> None:
    class Echo:
        def predict(self, X: Any, names: list[str]) -> Any:
            return X

    request = prediction_pb2.SeldonMessage()
    request.data.tftensor.dtype = 7  # DT_STRING: decoded as an array of bytes
    request.data.tftensor.string_val.append(b"\xff")
    with serve_grpc(Echo()) as address, grpc.insecure_channel(address) as channel:
        predict = channel.unary_unary("/seldon.protos.Model/Predict")
        with pytest.raises(grpc.RpcError) as caught:
            predict(request.SerializeToString(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "an ndarray answer holds a bytes" in str(caught.value.details())
