"""The Seldon JSON codec: decoding, golden encodings, round trips and a fuzz."""

from __future__ import annotations

import base64
import math
import random
from functools import partial
from typing import Any

import numpy as np
import orjson
import pytest

from infergraph.errors import BadRequest
from infergraph.protocol import seldon_json
from infergraph.protocol.message import DataKind, Feedback, Message, Meta, Status
from infergraph.protocol.tftensor import array_to_tf_json

# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("body", "kind", "expected", "dtype_kind"),
    [
        pytest.param(
            {"data": {"ndarray": [[1, 2], [3, 4]]}},
            DataKind.NDARRAY,
            [[1, 2], [3, 4]],
            "i",
            id="ndarray-ints",
        ),
        pytest.param(
            {"data": {"ndarray": [[0.5, 1.5]]}},
            DataKind.NDARRAY,
            [[0.5, 1.5]],
            "f",
            id="ndarray-floats",
        ),
        pytest.param(
            {"data": {"ndarray": ["a", "b"]}},
            DataKind.NDARRAY,
            ["a", "b"],
            "U",
            id="ndarray-strings",
        ),
        pytest.param(
            {"data": {"ndarray": [[1, "a"]]}},
            DataKind.NDARRAY,
            [["1", "a"]],
            "U",
            id="ndarray-mixed-coerced",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}},
            DataKind.TENSOR,
            [[1, 2], [3, 4]],
            "i",
            id="tensor",
        ),
        pytest.param(
            {"data": {"tensor": {"values": [1.5, 2.5]}}},
            DataKind.TENSOR,
            [1.5, 2.5],
            "f",
            id="tensor-no-shape",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [2, -1], "values": [1, 2, 3, 4]}}},
            DataKind.TENSOR,
            [[1, 2], [3, 4]],
            "i",
            id="tensor-inferred-dim",
        ),
        pytest.param(
            {"data": {"names": ["a"]}}, DataKind.NDARRAY, [], "f", id="data-without-kind-is-empty"
        ),
    ],
)
def test_decode_data_kinds(body, kind, expected, dtype_kind):
    msg = seldon_json.decode_message(body)
    assert msg.kind is kind
    assert isinstance(msg.data, np.ndarray)
    assert msg.data.dtype.kind == dtype_kind
    assert msg.data.tolist() == expected


@pytest.mark.parametrize(
    ("body", "kind", "data"),
    [
        pytest.param({"strData": "hello"}, DataKind.STR, "hello", id="strData"),
        pytest.param(
            {"binData": base64.b64encode(b"\x00\xff").decode()},
            DataKind.BIN,
            b"\x00\xff",
            id="binData",
        ),
        pytest.param(
            {"jsonData": {"a": [1, {"b": None}]}},
            DataKind.JSON,
            {"a": [1, {"b": None}]},
            id="jsonData-object",
        ),
        pytest.param({"jsonData": [1, 2]}, DataKind.JSON, [1, 2], id="jsonData-list"),
    ],
)
def test_decode_payload_kinds(body, kind, data):
    msg = seldon_json.decode_message(body)
    assert msg.kind is kind
    assert msg.data == data
    assert msg.names == []


def test_decode_names_and_meta():
    msg = seldon_json.decode_message(
        {
            "data": {"names": ["x", "y"], "ndarray": [[1, 2]]},
            "meta": {
                "puid": "abc",
                "tags": {"t": [1]},
                "routing": {"router": 1},
                "requestPath": {"m": "img:1"},
                "metrics": [{"key": "k", "type": "COUNTER", "value": 1}],
            },
        }
    )
    assert msg.names == ["x", "y"]
    assert msg.meta == Meta(
        "abc",
        {"t": [1]},
        {"router": 1},
        {"m": "img:1"},
        [{"key": "k", "type": "COUNTER", "value": 1}],
    )


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(
            {"code": 201, "info": "made", "reason": "R", "status": "SUCCESS"},
            Status(201, "made", "R", 0),
            id="success-name",
        ),
        pytest.param({"code": 500, "status": "FAILURE"}, Status(500, "", "", 1), id="failure-name"),
        pytest.param(
            {"status": 1, "code": -1, "info": "i", "reason": "r"},
            Status(-1, "i", "r", 1),
            id="seldon-error-body",
        ),
    ],
)
def test_decode_status(block, expected):
    msg = seldon_json.decode_message({"status": block})
    assert msg.kind is DataKind.NONE
    assert msg.status == expected


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param([1], "must be a JSON object", id="list"),
        pytest.param("x", "must be a JSON object", id="string"),
        pytest.param({}, "none of data, strData, binData or jsonData", id="empty-object"),
        pytest.param({"data": [1]}, "data must be an object", id="data-not-object"),
        pytest.param(
            {"data": {"names": "a", "ndarray": [1]}},
            "data.names must be a list",
            id="names-not-list",
        ),
        pytest.param({"data": {"ndarray": 5}}, "data.ndarray", id="ndarray-scalar"),
        pytest.param({"data": {"ndarray": {"a": 1}}}, "data.ndarray", id="ndarray-object"),
        pytest.param(
            {"data": {"ndarray": [[1, 2], [3]]}}, "data.ndarray is ragged", id="ndarray-ragged"
        ),
        pytest.param(
            {"data": {"ndarray": [[1, 2], 3]}},
            "data.ndarray is ragged",
            id="ndarray-rows-and-scalars",
        ),
        pytest.param(
            {"data": {"tensor": [1]}}, "data.tensor must be an object", id="tensor-not-object"
        ),
        pytest.param(
            {"data": {"tensor": {"values": 1}}},
            "data.tensor.values must be a list",
            id="tensor-values-scalar",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [3], "values": [1, 2]}}},
            "shape [3] does not match 2 values",
            id="tensor-shape-mismatch",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": "x", "values": [1]}}},
            "data.tensor",
            id="tensor-shape-not-list",
        ),
        pytest.param(
            {"data": {"tensor": {"values": ["a"]}}},
            "data.tensor.values must be numbers",
            id="tensor-strings",
        ),
        pytest.param(
            {"data": {"tensor": {"values": [1, None]}}},
            "data.tensor.values must be numbers",
            id="tensor-null",
        ),
        pytest.param(
            {"data": {"tensor": {"values": [[1], [1, 2]]}}},
            "data.tensor",
            id="tensor-ragged-values",
        ),
        pytest.param({"strData": 5}, "strData must be a string", id="strData-number"),
        pytest.param({"binData": "not base64!"}, "binData must be base64", id="binData-bad-chars"),
        pytest.param({"binData": "QUJ"}, "binData must be base64", id="binData-bad-padding"),
        pytest.param({"binData": 12}, "binData must be base64", id="binData-number"),
        pytest.param({"meta": [1], "strData": "x"}, "meta must be an object", id="meta-not-object"),
        pytest.param(
            {"meta": {"tags": [1]}, "strData": "x"},
            "meta.tags must be an object",
            id="tags-not-object",
        ),
        pytest.param(
            {"meta": {"routing": {"r": "a"}}, "strData": "x"}, "meta.routing", id="routing-not-int"
        ),
        pytest.param(
            {"meta": {"routing": {"r": True}}, "strData": "x"}, "meta.routing", id="routing-bool"
        ),
        pytest.param(
            {"meta": {"requestPath": "a"}, "strData": "x"},
            "meta.requestPath",
            id="requestPath-not-object",
        ),
        pytest.param(
            {"meta": {"metrics": {"k": 1}}, "strData": "x"},
            "meta.metrics must be a list",
            id="metrics-not-list",
        ),
        pytest.param({"status": {"code": "abc"}}, "status", id="status-code-not-number"),
        pytest.param({"status": {"status": [1]}}, "status", id="status-flag-not-number"),
    ],
)
def test_decode_rejects(body, words):
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_message(body)
    assert words in caught.value.message
    assert caught.value.reason == "MICROSERVICE_BAD_DATA"


def test_decode_names_the_nested_message():
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_message({"data": {"ndarray": [[1], [1, 2]]}}, "feedback.truth")
    assert "feedback.truth.data.ndarray" in caught.value.message


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        pytest.param(
            {"data": {"ndarry": [[1, 2]]}},
            "request",
            "unknown field 'ndarry' in data (did you mean 'ndarray'?); "
            "known fields: names, ndarray, tensor, tftensor",
            id="misspelt-kind",
        ),
        pytest.param(
            {"data": {"names": ["a"]}},
            "request",
            "data has no data kind: it needs ndarray, tensor or tftensor",
            id="no-kind",
        ),
        pytest.param(
            {"strData": "x", "extra": 1},
            "request",
            "unknown field 'extra' in the request; "
            "known fields: meta, data, binData, strData, jsonData, status",
            id="top-level",
        ),
        pytest.param(
            {"data": {"ndarray": [[1]], "shape": [1, 1]}},
            "feedback.truth",
            "unknown field 'shape' in feedback.truth.data",
            id="nested-data-named",
        ),
        pytest.param(
            {"strdata": "x"},
            "feedback.request",
            "unknown field 'strdata' in feedback.request (did you mean 'strData'?)",
            id="nested-message-named",
        ),
    ],
)
def test_strict_decode_rejects_unknown_fields(body, where, words):
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_message(body, where, strict=True)
    assert words in caught.value.message
    assert caught.value.reason == "MICROSERVICE_BAD_DATA"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {
                "meta": {"puid": "p", "tags": {"t": 1}},
                "data": {"names": ["a", "b"], "ndarray": [[1, 2]]},
                "status": {"code": 200, "status": "SUCCESS"},
            },
            id="meta-data-status",
        ),
        pytest.param({"data": {"names": [], "tensor": {"values": [1]}}}, id="tensor"),
        pytest.param({"data": {"tftensor": array_to_tf_json(np.array([1.0]))}}, id="tftensor"),
        pytest.param({"binData": base64.b64encode(b"x").decode()}, id="binData"),
        pytest.param({"strData": "x", "meta": {}}, id="strData"),
        pytest.param({"jsonData": {"any": {"keys": 1}}}, id="jsonData-keys-are-free"),
    ],
)
def test_strict_decode_reads_what_lenient_decode_reads(body):
    strict, lenient = (seldon_json.decode_message(body, strict=s) for s in (True, False))
    assert (strict.kind, strict.names, strict.meta, strict.status) == (
        lenient.kind,
        lenient.names,
        lenient.meta,
        lenient.status,
    )


def test_lenient_decode_reads_unknown_fields_as_seldon_does():
    """Node answers and *_raw results: Seldon's wrapper reads a data without a kind as []."""
    msg = seldon_json.decode_message({"data": {"ndarry": [[1, 2]]}, "extra": 1}, "response")
    assert msg.kind is DataKind.NDARRAY
    assert msg.data.tolist() == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"reward": 1, "rewards": 2},
            "unknown field 'rewards' in the feedback (did you mean 'reward'?); "
            "known fields: request, response, reward, truth",
            id="top-level",
        ),
        pytest.param(
            {"request": {"data": {"ndarry": [[1]]}}},
            "unknown field 'ndarry' in feedback.request.data",
            id="request-data",
        ),
        pytest.param(
            {"response": {"meta": {}, "jsonData": {}, "extra": 1}},
            "unknown field 'extra' in feedback.response;",
            id="response",
        ),
    ],
)
def test_strict_decode_feedback_rejects_unknown_fields(body, words):
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_feedback(body, strict=True)
    assert words in caught.value.message
    seldon_json.decode_feedback(body)  # lenient: read as before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([{"strData": "a"}, {"data": {"ndarray": [1]}}], id="json-list"),
        pytest.param(
            {"seldonMessages": [{"strData": "a"}, {"data": {"ndarray": [1]}}]}, id="seldonMessages"
        ),
    ],
)
def test_decode_aggregate(body):
    first, second = seldon_json.decode_aggregate(body)
    assert (first.kind, first.data) == (DataKind.STR, "a")
    assert second.kind is DataKind.NDARRAY
    assert second.data.tolist() == [1]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"strData": "a"}, "aggregate expects a JSON list", id="single-message"),
        pytest.param(
            {"seldonMessages": {"strData": "a"}}, "aggregate expects a JSON list", id="not-a-list"
        ),
        pytest.param(
            [{"strData": "a"}, {"data": 1}], "seldonMessages[1].data", id="bad-item-named"
        ),
    ],
)
def test_decode_aggregate_rejects(body, words):
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_aggregate(body)
    assert words in caught.value.message


def test_decode_feedback():
    fb = seldon_json.decode_feedback(
        {
            "request": {"data": {"names": ["a"], "ndarray": [[1]]}},
            "response": {"meta": {"routing": {"r": 1}}, "data": {"ndarray": [[0.9]]}},
            "reward": 1,
            "truth": {"data": {"ndarray": [[1.0]]}},
        }
    )
    assert fb.reward == 1.0 and isinstance(fb.reward, float)
    assert fb.request is not None and fb.request.names == ["a"]
    assert fb.response is not None and fb.response.meta.routing == {"r": 1}
    assert fb.truth is not None and fb.truth.data.tolist() == [[1.0]]


def test_decode_feedback_defaults():
    fb = seldon_json.decode_feedback({"reward": None})
    assert fb == Feedback(None, None, 0.0, None)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param([], "body must be a JSON object", id="list"),
        pytest.param({"reward": "high"}, "reward must be a number", id="reward-string"),
        pytest.param({"reward": True}, "reward must be a number", id="reward-bool"),
        pytest.param({"request": {"data": 1}}, "feedback.request.data", id="bad-request"),
    ],
)
def test_decode_feedback_rejects(body, words):
    with pytest.raises(BadRequest) as caught:
        seldon_json.decode_feedback(body)
    assert words in caught.value.message


def test_loads_reports_invalid_json():
    with pytest.raises(BadRequest, match="Invalid JSON"):
        seldon_json.loads(b'{"data": ')


# ---------------------------------------------------------------- golden encodings


@pytest.mark.parametrize(
    ("msg", "golden"),
    [
        pytest.param(
            Message(
                DataKind.NDARRAY, np.array([[1, 2]]), ["a", "b"], Meta(puid="p", tags={"x": 1})
            ),
            b'{"meta":{"puid":"p","tags":{"x":1}},"data":{"names":["a","b"],"ndarray":[[1,2]]}}',
            id="ndarray-ints-stay-ints",
        ),
        pytest.param(
            Message(DataKind.NDARRAY, [["x", 1.5]], []),
            b'{"meta":{},"data":{"names":[],"ndarray":[["x",1.5]]}}',
            id="ndarray-list",
        ),
        pytest.param(
            Message(DataKind.TENSOR, np.array([[1.0, 2.0], [3.0, 4.0]]), ["t:0", "t:1"]),
            b'{"meta":{},"data":{"names":["t:0","t:1"],"tensor":{"shape":[2,2],"values":[1.0,2.0,3.0,4.0]}}}',
            id="tensor",
        ),
        pytest.param(
            Message(DataKind.TFTENSOR, np.array([1.0, 2.0], dtype=np.float32)),
            b'{"meta":{},"data":{"names":[],"tftensor":{"dtype":"DT_FLOAT",'
            b'"tensorShape":{"dim":[{"size":"2"}]},"tensorContent":"AACAPwAAAEA="}}}',
            id="tftensor",
        ),
        pytest.param(
            Message(DataKind.STR, "hi", meta=Meta(request_path={"m": "i:1"})),
            b'{"meta":{"requestPath":{"m":"i:1"}},"strData":"hi"}',
            id="strData",
        ),
        pytest.param(
            Message(DataKind.BIN, b"\x00\x01"), b'{"meta":{},"binData":"AAE="}', id="binData"
        ),
        pytest.param(
            Message(DataKind.JSON, {"k": [True]}),
            b'{"meta":{},"jsonData":{"k":[true]}}',
            id="jsonData",
        ),
        pytest.param(
            Message(DataKind.NONE, None, status=Status(404, "gone", "R", 1)),
            b'{"status":{"code":404,"info":"gone","reason":"R","status":"FAILURE"},"meta":{}}',
            id="status-only",
        ),
        pytest.param(
            Message(
                DataKind.STR, "m", meta=Meta(metrics=[{"key": "k", "type": "GAUGE", "value": 2}])
            ),
            b'{"meta":{"metrics":[{"key":"k","type":"GAUGE","value":2}]},"strData":"m"}',
            id="metrics",
        ),
    ],
)
def test_golden_encoding(msg, golden):
    assert seldon_json.dumps(seldon_json.encode_message(msg)) == golden


def test_raw_message_is_encoded_verbatim():
    raw = {"anything": [1, 2], "meta": {"whatever": True}}
    msg = Message(DataKind.NONE, None, raw=raw)
    assert seldon_json.encode_message(msg) is raw


def test_error_body_golden():
    assert seldon_json.dumps(seldon_json.error_body("boom")) == (
        b'{"status":{"status":1,"info":"boom","code":-1,"reason":"MICROSERVICE_BAD_DATA"}}'
    )


def test_dumps_handles_numpy_values():
    value = {
        "f32": np.array([0.5], dtype=np.float32),
        "strings": np.array(["a", "b"]),
        "objects": np.array([{"a": 1}], dtype=object),
        "scalar": np.int64(3),
        "strided": np.arange(6).reshape(2, 3)[:, ::2],
        "bytes": b"\x01",
        "tuple": (1, 2),
    }
    assert orjson.loads(seldon_json.dumps(value)) == {
        "f32": [0.5],
        "strings": ["a", "b"],
        "objects": [{"a": 1}],
        "scalar": 3,
        "strided": [[0, 2], [3, 5]],
        "bytes": "AQ==",
        "tuple": [1, 2],
    }


def test_encode_feedback_round_trip():
    body = {
        "reward": 0.5,
        "request": {"data": {"names": [], "ndarray": [[1]]}, "meta": {}},
        "truth": {"meta": {}, "strData": "yes"},
    }
    fb = seldon_json.decode_feedback(body)
    assert orjson.loads(seldon_json.dumps(seldon_json.encode_feedback(fb))) == body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}, id="ndarray-ints"
        ),
        pytest.param({"data": {"names": [], "ndarray": [[0.25, -1.5]]}}, id="ndarray-floats"),
        pytest.param({"data": {"names": [], "ndarray": [["a", "b"]]}}, id="ndarray-strings"),
        pytest.param(
            {"data": {"names": ["x"], "tensor": {"shape": [2, 1], "values": [1.5, 2.5]}}},
            id="tensor",
        ),
        pytest.param(
            {
                "data": {
                    "names": [],
                    "tftensor": array_to_tf_json(np.arange(6, dtype=np.int32).reshape(2, 3)),
                }
            },
            id="tftensor",
        ),
        pytest.param({"strData": "héllo"}, id="strData"),
        pytest.param({"binData": base64.b64encode(bytes(range(256))).decode()}, id="binData"),
        pytest.param({"jsonData": {"nested": {"list": [1, 2.5, "x", None, True]}}}, id="jsonData"),
    ],
)
@pytest.mark.parametrize(
    "meta",
    [
        pytest.param({}, id="no-meta"),
        pytest.param({"puid": "p", "tags": {"a": 1}, "requestPath": {"n": "i:1"}}, id="meta"),
    ],
)
def test_json_round_trip(body, meta):
    sent = {"meta": meta, **body}
    decoded = seldon_json.decode_message(orjson.loads(orjson.dumps(sent)))
    assert orjson.loads(seldon_json.dumps(seldon_json.encode_message(decoded))) == sent


# ---------------------------------------------------------------- fuzz

_KEYS = [
    "data",
    "meta",
    "strData",
    "binData",
    "jsonData",
    "status",
    "names",
    "ndarray",
    "tensor",
    "tftensor",
    "shape",
    "values",
    "dtype",
    "tensorShape",
    "dim",
    "size",
    "tensorContent",
    "floatVal",
    "doubleVal",
    "intVal",
    "int64Val",
    "stringVal",
    "boolVal",
    "halfVal",
    "scomplexVal",
    "uint64Val",
    "puid",
    "tags",
    "routing",
    "requestPath",
    "metrics",
    "code",
    "info",
    "reason",
    "seldonMessages",
    "reward",
    "request",
    "response",
    "truth",
]
_STRINGS = [
    "",
    "a",
    "AAE=",
    "AACAPwAAAEA=",
    "!!",
    "é",
    "DT_FLOAT",
    "DT_STRING",
    "DT_INT8",
    "DT_HALF",
    "DT_COMPLEX64",
    "DT_BOOL",
    "DT_INT64",
    "3",
    "-1",
    "1e400",
    "NaN",
    "FAILURE",
    "SUCCESS",
]


def _fuzz_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.35:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                1,
                -1,
                2,
                3,
                255,
                1000,
                70000,
                2**31,
                2**63,
                2**70,
                -(2**65),
                0.5,
                -2.5,
                1e300,
                math.inf,
                math.nan,
                rng.randint(-5, 5),
                rng.choice(_STRINGS),
            ]
        )
    if roll < 0.65:
        return [_fuzz_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.75:  # a rectangular numeric block, to get past the shape checks
        rows, cols = rng.randint(0, 3), rng.randint(0, 3)
        return [[rng.choice([1, 2.5, -3]) for _ in range(cols)] for _ in range(rows)]
    keys = rng.sample(_KEYS, rng.randint(0, 4))
    return {k: _fuzz_value(rng, depth - 1) for k in keys}


def _fuzz_message(rng: random.Random) -> Any:
    if rng.random() < 0.15:
        return _fuzz_value(rng, 4)
    top = rng.choice(["data", "strData", "binData", "jsonData", "status"])
    obj = {top: _fuzz_value(rng, 4)}
    if top == "data" and rng.random() < 0.7:
        kind = rng.choice(["ndarray", "tensor", "tftensor"])
        obj["data"] = {kind: _fuzz_value(rng, 4)}
        if kind == "tftensor" and rng.random() < 0.7:
            obj["data"]["tftensor"] = {
                "dtype": rng.choice([*_STRINGS, 1, 9, 99]),
                "tensorShape": {
                    "dim": [{"size": _fuzz_value(rng, 0)} for _ in range(rng.randint(0, 2))]
                },
                rng.choice(_KEYS): _fuzz_value(rng, 2),
            }
    if rng.random() < 0.4:
        obj["meta"] = _fuzz_value(rng, 3)
    return obj


FUZZ_CASES = [_fuzz_message(random.Random(seed)) for seed in range(400)]


@pytest.mark.parametrize(
    "decode",
    [
        pytest.param(seldon_json.decode_message, id="message"),
        pytest.param(partial(seldon_json.decode_message, strict=True), id="message-strict"),
        pytest.param(seldon_json.decode_feedback, id="feedback"),
        pytest.param(partial(seldon_json.decode_feedback, strict=True), id="feedback-strict"),
        pytest.param(seldon_json.decode_aggregate, id="aggregate"),
    ],
)
def test_fuzz_decoders_raise_only_bad_request(decode):
    outcomes = {"ok": 0, "bad_request": 0}
    for case in FUZZ_CASES:
        for obj in (case, [case, case], {"seldonMessages": [case]}, {"request": case, "reward": 1}):
            try:
                decode(obj)
            except BadRequest:
                outcomes["bad_request"] += 1
                continue
            except Exception as exc:  # pragma: no cover - the failure message is the point
                name = getattr(decode, "__name__", decode)
                pytest.fail(f"{name}({obj!r}) raised {type(exc).__name__}: {exc}")
            outcomes["ok"] += 1
    assert outcomes["ok"] > 20 and outcomes["bad_request"] > 20, outcomes


def test_fuzz_decoded_wire_messages_encode_again():
    """Whatever decodes from real JSON encodes back to JSON (a transformer echo)."""
    encoded = 0
    for case in FUZZ_CASES:
        try:
            wire = orjson.loads(orjson.dumps(case))
        except TypeError:  # not representable as JSON (an integer past 64 bits)
            continue
        try:
            msg = seldon_json.decode_message(wire)
        except BadRequest:
            continue
        msg.raw = None
        assert isinstance(orjson.loads(seldon_json.dumps(seldon_json.encode_message(msg))), dict)
        encoded += 1
    assert encoded > 20
