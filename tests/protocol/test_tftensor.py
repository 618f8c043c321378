"""The TensorProto codec: numpy <-> TensorFlow's proto-JSON and protobuf, without TensorFlow."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import orjson
import pytest
from google.protobuf import json_format

from infergraph.errors import BadRequest
from infergraph.protocol.proto.tensorflow.tensor_pb2 import TensorProto
from infergraph.protocol.tftensor import (
    array_to_tf_json,
    array_to_tf_proto,
    tf_json_to_array,
    tf_proto_to_array,
)


def tf_json(array: np.ndarray) -> dict[str, Any]:
    """What protobuf's own MessageToDict writes for the TensorProto of ``array``."""
    proto = TensorProto()
    array_to_tf_proto(array, proto)
    return json_format.MessageToDict(proto)


def typed_proto(dtype: int, shape: list[int], field: str, values: list[Any]) -> dict[str, Any]:
    """TensorProto JSON with values in a typed field, as TensorFlow writes small tensors."""
    proto = TensorProto(dtype=dtype)
    for n in shape:
        proto.tensor_shape.dim.add(size=n)
    getattr(proto, field).extend(values)
    return json_format.MessageToDict(proto)


ROUND_TRIP_DTYPES = [
    "float32",
    "float64",
    "float16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
]


@pytest.mark.parametrize("dtype", [pytest.param(d, id=d) for d in ROUND_TRIP_DTYPES])
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((), id="scalar"),
        pytest.param((3,), id="1d"),
        pytest.param((2, 3), id="2d"),
        pytest.param((0, 3), id="empty"),
    ],
)
def test_tftensor_round_trip(dtype, shape):
    rng = np.random.default_rng(0)
    array = (rng.integers(0, 100, size=shape) + (1j if "complex" in dtype else 0)).astype(dtype)
    as_json = array_to_tf_json(array)
    assert as_json == tf_json(array), "our JSON must equal protobuf's MessageToDict"
    for decoded in (
        tf_json_to_array(as_json),
        tf_json_to_array(orjson.loads(orjson.dumps(as_json))),
    ):
        assert decoded.dtype == array.dtype
        assert decoded.shape == array.shape
        np.testing.assert_array_equal(decoded, array)
    proto = TensorProto()
    array_to_tf_proto(array, proto)
    from_proto = tf_proto_to_array(TensorProto.FromString(proto.SerializeToString()))
    assert from_proto.dtype == array.dtype
    np.testing.assert_array_equal(from_proto, array)


def test_tftensor_big_endian_input_is_written_little_endian():
    array = np.array([1.0, 2.0], dtype=">f4")
    assert array_to_tf_json(array)["tensorContent"] == "AACAPwAAAEA="


def test_tftensor_strings_round_trip():
    array = np.array([b"a", b"bc"], dtype=object)
    as_json = array_to_tf_json(array)
    assert as_json == {
        "dtype": "DT_STRING",
        "tensorShape": {"dim": [{"size": "2"}]},
        "stringVal": ["YQ==", "YmM="],
    }
    assert as_json == tf_json(array)
    assert tf_json_to_array(as_json).tolist() == [b"a", b"bc"]


def test_tftensor_strings_keep_trailing_nul_bytes():
    obj = typed_proto(7, [2], "string_val", [b"a\x00", b"\x00\x00"])
    assert tf_json_to_array(obj).tolist() == [b"a\x00", b"\x00\x00"]


def test_tftensor_decoded_arrays_are_writable():
    array = tf_json_to_array(array_to_tf_json(np.arange(4, dtype=np.float32)))
    array += 1  # user code may modify its input in place, as with tf.make_ndarray
    assert array.tolist() == [1, 2, 3, 4]


def test_tftensor_unicode_strings_are_utf8():
    assert array_to_tf_json(np.array(["é"]))["stringVal"] == [
        base64.b64encode("é".encode()).decode()
    ]


@pytest.mark.parametrize(
    ("obj", "expected", "dtype"),
    [
        pytest.param(
            typed_proto(1, [2, 2], "float_val", [1, 2, 3, 4]),
            [[1, 2], [3, 4]],
            "float32",
            id="floatVal",
        ),
        pytest.param(
            typed_proto(2, [2], "double_val", [0.5, 1.5]), [0.5, 1.5], "float64", id="doubleVal"
        ),
        pytest.param(typed_proto(3, [3], "int_val", [1, -2, 3]), [1, -2, 3], "int32", id="intVal"),
        pytest.param(
            typed_proto(9, [2], "int64_val", [2**40, -1]),
            [2**40, -1],
            "int64",
            id="int64Val-as-strings",
        ),
        pytest.param(
            typed_proto(23, [1], "uint64_val", [2**63]), [2**63], "uint64", id="uint64Val"
        ),
        pytest.param(
            typed_proto(10, [2], "bool_val", [True, False]), [True, False], "bool", id="boolVal"
        ),
        pytest.param(
            typed_proto(7, [2], "string_val", [b"x", b"yz"]),
            [b"x", b"yz"],
            "object",
            id="stringVal",
        ),
        pytest.param(
            typed_proto(19, [1], "half_val", [0x3C00]), [1.0], "float16", id="halfVal-bits"
        ),
        pytest.param(
            typed_proto(8, [1], "scomplex_val", [1, 2]),
            [1 + 2j],
            "complex64",
            id="scomplexVal-pairs",
        ),
        pytest.param(
            typed_proto(1, [2, 2], "float_val", [7]),
            [[7, 7], [7, 7]],
            "float32",
            id="one-value-fills-shape",
        ),
        pytest.param(typed_proto(1, [], "float_val", [3.5]), 3.5, "float32", id="scalar"),
        pytest.param(
            {
                "dtype": "DT_FLOAT",
                "tensorShape": {"dim": [{"size": "2"}]},
                "floatVal": ["NaN", "Infinity"],
            },
            [math.nan, math.inf],
            "float32",
            id="float-specials",
        ),
        pytest.param(
            {"dtype": 1, "tensor_shape": {"dim": [{"size": 1}]}, "float_val": [2]},
            [2.0],
            "float32",
            id="snake-case-and-enum-number",
        ),
        pytest.param(
            {"dtype": "DT_INT32", "tensorShape": {"dim": [{"size": "0"}]}}, [], "int32", id="empty"
        ),
    ],
)
def test_tftensor_typed_fields(obj, expected, dtype):
    array = tf_json_to_array(obj)
    assert array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(array, np.array(expected))


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        pytest.param([1], "must be a TensorProto JSON object", id="not-object"),
        pytest.param(
            {"dtype": "DT_RESOURCE"}, "unsupported TensorFlow dtype", id="unsupported-dtype"
        ),
        pytest.param({}, "unsupported TensorFlow dtype", id="no-dtype"),
        pytest.param({"dtype": ["DT_FLOAT"]}, "unsupported TensorFlow dtype", id="dtype-list"),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "x"}]}},
            "malformed tensorShape",
            id="bad-dim",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": [1]}, "malformed tensorShape", id="shape-list"
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorContent": 5}, "tensorContent", id="content-not-string"
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}, "tensorContent": "AAA="},
            "DT_FLOAT",
            id="content-not-multiple",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "3"}]}, "floatVal": [1, 2]},
            "do not fill the shape [3]",
            id="too-few-values",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}]}, "floatVal": [1, 2]},
            "do not fill the shape [1]",
            id="too-many-values",
        ),
        pytest.param(
            {"dtype": "DT_INT64", "tensorShape": {"dim": [{"size": "1"}]}, "int64Val": ["x"]},
            "DT_INT64",
            id="int-not-number",
        ),
        pytest.param(
            {"dtype": "DT_INT8", "tensorShape": {"dim": [{"size": "1"}]}, "intVal": [1000]},
            "DT_INT8",
            id="int8-overflow",
        ),
        pytest.param(
            {"dtype": "DT_HALF", "tensorShape": {"dim": [{"size": "1"}]}, "halfVal": [70000]},
            "DT_HALF",
            id="half-overflow",
        ),
        pytest.param(
            {"dtype": "DT_STRING", "tensorShape": {"dim": [{"size": "1"}]}, "stringVal": [1]},
            "DT_STRING",
            id="string-not-base64",
        ),
        pytest.param(
            {
                "dtype": "DT_STRING",
                "tensorShape": {"dim": [{"size": "3"}]},
                "stringVal": ["YQ==", "YQ=="],
            },
            "do not fill the shape [3]",
            id="strings-too-few",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}]}, "floatVal": [1]},
            "tensorShape.dim[0].size is -1; a tensor's dimensions are non-negative",
            id="negative-dim",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}, "floatVal": 1.5},
            "floatVal must be a list of DT_FLOAT values, got a number (1.5)",
            id="scalar-values",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}, "floatVal": [1e300, 2]},
            "DT_FLOAT: a value is out of range for float32",
            id="float-past-float32",
        ),
        pytest.param(
            {
                "dtype": "DT_COMPLEX64",
                "tensorShape": {"dim": [{"size": "1"}]},
                "scomplexVal": [1e300, 0],
            },
            "DT_COMPLEX64: a value is out of range for complex64",
            id="complex-past-complex64",
        ),
        pytest.param(
            {"dtype": "DT_COMPLEX64", "tensorShape": {"dim": [{"size": "1"}]}, "scomplexVal": 5},
            "scomplexVal must be a list of DT_COMPLEX64 values, got a number (5)",
            id="scalar-complex-values",
        ),
        pytest.param(
            {"dtype": "DT_STRING", "tensorShape": {"dim": [{"size": "1"}]}, "stringVal": "YQ=="},
            'stringVal must be a list of DT_STRING values, got a string ("YQ==")',
            id="string-not-in-a-list",
        ),
        pytest.param(
            {"dtype": "DT_BOOL", "tensorShape": {"dim": [{"size": "1"}]}, "boolVal": {"a": 1}},
            "boolVal must be a list of DT_BOOL values, got an object",
            id="object-values",
        ),
        pytest.param(
            {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": str(10**12)}]}, "floatVal": [1]},
            "too large",
            id="fill-too-large",
        ),
    ],
)
def test_tftensor_rejects(obj, words):
    with pytest.raises(BadRequest) as caught:
        tf_json_to_array(obj, "data.tftensor")
    assert words in caught.value.message
    assert caught.value.message.startswith("data.tftensor")


@pytest.mark.parametrize("dtype", [pytest.param(7, id="string"), pytest.param(10, id="bool")])
def test_tftensor_proto_huge_empty_shape_is_refused(dtype):
    # found by tests/fuzz: an echo answered [2**40, 0] as an ndarray of 2**40 empty lists
    proto = TensorProto(dtype=dtype)
    proto.tensor_shape.dim.add(size=2**40)
    proto.tensor_shape.dim.add(size=0)
    with pytest.raises(BadRequest) as caught:
        tf_proto_to_array(proto)
    assert "shape [1099511627776, 0] holds no values" in caught.value.message
    proto.tensor_shape.dim[0].size = 3  # a small empty tensor is still fine
    assert tf_proto_to_array(proto).shape == (3, 0)


def test_tftensor_proto_negative_dim_is_named():
    proto = TensorProto(dtype=1, float_val=[1.0])
    proto.tensor_shape.dim.add(size=-3)
    with pytest.raises(BadRequest) as caught:
        tf_proto_to_array(proto)
    assert caught.value.message.startswith("data.tftensor.tensorShape.dim[0].size is -3")


def test_tftensor_unsupported_array_dtype():
    with pytest.raises(BadRequest, match="datetime64"):
        array_to_tf_json(np.array(["2020-01-01"], dtype="datetime64[D]"))
