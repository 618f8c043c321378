"""One component over the Open Inference Protocol's REST paths, in process: the endpoints,
what user methods receive for each content type, how their results become tensors, output
selection, versions, and V2's error JSON."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from infergraph.errors import MicroserviceError
from tests.conftest import ClientFactory


class Recorder:
    """Keeps what predict received; answers with ``self.answer`` (or X when None)."""

    def __init__(self, answer: Any = None) -> None:
        self.seen: list[Any] = []
        self.answer = answer

    def predict(self, X: Any, names: Any) -> Any:
        self.seen.append(X)
        return X if self.answer is None else self.answer


def tensor(name: str, datatype: str, shape: list[int], data: list[Any], **params: Any) -> Any:
    out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape, "data": data}
    if params:
        out["parameters"] = params
    return out


async def infer(client: Any, body: dict[str, Any], model: str = "Recorder") -> Any:
    return await client.post(f"/v2/models/{model}/infer", json=body)


async def test_server_and_model_endpoints(asgi_client: ClientFactory) -> None:
    client = asgi_client(Recorder(), unit_id="iris")
    assert (await client.get("/v2")).json()["extensions"] == ["binary_tensor_data"]
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    meta = (await client.get("/v2/models/iris")).json()
    assert meta == {"name": "iris", "versions": [], "platform": "", "inputs": [], "outputs": []}
    assert (await client.get("/v2/models/iris/ready")).json() == {"name": "iris", "ready": True}
    versioned = await client.get("/v2/models/iris/versions/7/ready")
    assert versioned.status_code == 200  # an unversioned model takes any version


class Described(Recorder):
    def init_metadata(self) -> dict[str, Any]:
        return {
            "versions": ["v1"],
            "platform": "sklearn",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"messagetype": "ndarray", "schema": {}}],
        }


async def test_metadata_and_versions_come_from_init_metadata(asgi_client: ClientFactory) -> None:
    client = asgi_client(Described(), unit_id="m")
    meta = (await client.get("/v2/models/m/versions/v1")).json()
    assert meta["platform"] == "sklearn" and meta["versions"] == ["v1"]
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == []  # Seldon-only descriptions have no V2 form
    body = {"inputs": [tensor("x", "FP32", [1, 4], [1, 2, 3, 4])]}
    answer = await client.post("/v2/models/m/versions/v1/infer", json=body)
    assert answer.status_code == 200 and answer.json()["model_version"] == "v1"
    wrong = await client.post("/v2/models/m/versions/v9/infer", json=body)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "Model 'm' has no version 'v9' (it has v1)"}


@pytest.mark.parametrize(
    ("inputs", "params", "expected"),
    [
        pytest.param(
            [tensor("x", "INT32", [2, 2], [1, 2, 3, 4])],
            {},
            np.array([[1, 2], [3, 4]], np.int32),
            id="np-default",
        ),
        pytest.param(
            [tensor("s", "BYTES", [2], ["héllo", "world"], content_type="str")],
            {},
            ["héllo", "world"],
            id="str",
        ),
        pytest.param(
            [
                tensor(
                    "b",
                    "BYTES",
                    [1],
                    [base64.b64encode(b"\x00\x01").decode()],
                    content_type="base64",
                )
            ],
            {},
            [b"\x00\x01"],
            id="base64",
        ),
        pytest.param(
            [tensor("t", "BYTES", [1], ["2024-05-01T10:00:00"], content_type="datetime")],
            {},
            [datetime.datetime(2024, 5, 1, 10)],
            id="datetime",
        ),
        pytest.param(
            [tensor("s", "BYTES", [1], ["abc"])],
            {"content_type": "str"},
            ["abc"],
            id="request-level-str",
        ),
    ],
)
async def test_what_predict_receives(
    asgi_client: ClientFactory, inputs: list[Any], params: dict[str, Any], expected: Any
) -> None:
    user = Recorder(answer=np.zeros(1))
    client = asgi_client(user)
    response = await infer(client, {"inputs": inputs, "parameters": params})
    assert response.status_code == 200, response.text
    [seen] = user.seen
    if isinstance(expected, np.ndarray):
        assert isinstance(seen, np.ndarray) and seen.dtype == expected.dtype
        assert np.array_equal(seen, expected)
    else:
        assert seen == expected


async def test_several_inputs_arrive_as_a_dict_and_pd_as_a_dataframe(
    asgi_client: ClientFactory,
) -> None:
    user = Recorder(answer=np.zeros(1))
    client = asgi_client(user)
    inputs = [
        tensor("age", "INT64", [2], [31, 42]),
        tensor("name", "BYTES", [2], ["ann", "bob"], content_type="str"),
    ]
    assert (await infer(client, {"inputs": inputs})).status_code == 200
    as_dict = user.seen.pop()
    assert set(as_dict) == {"age", "name"} and as_dict["name"] == ["ann", "bob"]
    pd_request = {"inputs": inputs, "parameters": {"content_type": "pd"}}
    assert (await infer(client, pd_request)).status_code == 200
    frame = user.seen.pop()
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("list") == {"age": [31, 42], "name": ["ann", "bob"]}


@pytest.mark.parametrize(
    ("answer", "outputs", "parameters"),
    [
        pytest.param(
            np.array([[0.25, 0.75]]),
            [tensor("output-0", "FP64", [1, 2], [0.25, 0.75])],
            None,
            id="ndarray",
        ),
        pytest.param(
            ["yes", "no"],
            [tensor("output-0", "BYTES", [2], ["yes", "no"], content_type="str")],
            None,
            id="strings",
        ),
        pytest.param(
            {"label": np.array([1, 0], np.int8), "score": np.array([0.5, 0.5], np.float32)},
            [tensor("label", "INT8", [2], [1, 0]), tensor("score", "FP32", [2], [0.5, 0.5])],
            None,
            id="dict",
        ),
        pytest.param(
            pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
            [
                tensor("a", "INT64", [2], [1, 2]),
                tensor("b", "BYTES", [2], ["x", "y"], content_type="str"),
            ],
            {"content_type": "pd"},
            id="dataframe",
        ),
        pytest.param(True, [tensor("output-0", "BOOL", [], [True])], None, id="scalar"),
    ],
)
async def test_results_become_tensors(
    asgi_client: ClientFactory, answer: Any, outputs: list[Any], parameters: Any
) -> None:
    client = asgi_client(Recorder(answer=answer))
    response = await infer(client, {"id": "q", "inputs": [tensor("x", "FP32", [1], [1])]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outputs"] == outputs
    assert body.get("parameters") == parameters
    assert body["id"] == "q" and body["model_name"] == "Recorder"


class Named(Recorder):
    v2_output_name = "predict_proba"


async def test_output_name_and_requested_outputs(asgi_client: ClientFactory) -> None:
    client = asgi_client(Named(answer=np.array([1.0])))
    body = {"inputs": [tensor("x", "FP32", [1], [1])], "outputs": [{"name": "predict_proba"}]}
    response = await infer(client, body, "Named")
    assert [o["name"] for o in response.json()["outputs"]] == ["predict_proba"]
    missing = await infer(client, {**body, "outputs": [{"name": "nope"}]}, "Named")
    assert missing.status_code == 400
    assert "'nope' is not an output of the model" in missing.json()["error"]


class Raw:
    def predict_raw(self, request: Any) -> Any:
        return request


class Refusing:
    def predict(self, X: Any, names: Any) -> Any:
        raise MicroserviceError("I only take positive numbers", status_code=422)


class Unencodable:
    def predict(self, X: Any, names: Any) -> Any:
        return [object()]


@pytest.mark.parametrize(
    ("user", "status", "words"),
    [
        pytest.param(Raw(), 400, "takes Seldon protocol messages", id="raw-method"),
        pytest.param(Refusing(), 422, "I only take positive numbers", id="user-status"),
        pytest.param(Unencodable(), 500, "output 'output-0'", id="not-a-tensor"),
    ],
)
async def test_errors_are_v2_error_json(
    asgi_client: ClientFactory, user: Any, status: int, words: str
) -> None:
    client = asgi_client(user, unit_id="m")
    response = await infer(client, {"inputs": [tensor("x", "FP32", [1], [1])]}, "m")
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and words in body["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(b"{", "not valid JSON", id="json"),
        pytest.param(b"[]", "must be a JSON object", id="not-object"),
        pytest.param(b"{}", "inputs is missing", id="no-inputs"),
        pytest.param(
            b'{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}',
            "needs 2 values",
            id="shape",
        ),
        pytest.param(
            b'{"inputs":[{"name":"x","shape":[1],"datatype":"BF16","data":[1]}]}',
            "'BF16' is not supported by infergraph",
            id="datatype",
        ),
        pytest.param(
            b'{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["x"],'
            b'"parameters":{"content_type":"base64"}}]}',
            "is not base64",
            id="bad-base64",
        ),
        pytest.param(
            b'{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["x"],'
            b'"parameters":{"content_type":"yaml"}}]}',
            "content_type 'yaml' is not one of",
            id="unknown-content-type",
        ),
    ],
)
async def test_malformed_requests(asgi_client: ClientFactory, body: bytes, words: str) -> None:
    client = asgi_client(Recorder(), unit_id="m")
    response = await client.post("/v2/models/m/infer", content=body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


async def test_unknown_paths_and_methods(asgi_client: ClientFactory) -> None:
    client = asgi_client(Recorder(), unit_id="m")
    response = await client.get("/v2/models/m/explain")
    assert response.status_code == 404 and "error" in response.json()
    response = await client.get("/v2/models/m/infer")
    assert response.status_code == 405 and "POST" in response.json()["error"]
    response = await client.get("/v2/models/other")
    assert response.status_code == 400
    assert response.json() == {"error": "Model 'other' is not found on this server (it serves 'm')"}
