"""Component metadata over REST and gRPC (reference §1.14; checklist 34, 43, 48): defaults
from the image, then ``init_metadata()``, then MODEL_METADATA (JSON or YAML) read from the
environment; invalid metadata is Seldon's 500 MICROSERVICE_BAD_METADATA, on /metadata and
the gRPC metadata calls only."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import empty_pb2, json_format

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings
from infergraph.testing import serve_grpc
from infergraph.transport.rest.component import RestApp


class Described:
    def predict(self, X, names):
        return X

    def init_metadata(self):
        return {
            "name": "from-init",
            "versions": ["v1"],
            "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
            "custom": {"team": "ml"},
        }


ENV_JSON = '{"versions": ["v2"], "platform": "sklearn"}'
ENV_YAML = "versions: [v3]\noutputs:\n- {name: proba, datatype: FP32, shape: [1, 2]}\n"

MERGED = {
    ENV_JSON: {
        "name": "from-init",
        "versions": ["v2"],
        "platform": "sklearn",
        "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
        "outputs": [],
        "custom": {"team": "ml"},
    },
    ENV_YAML: {
        "name": "from-init",
        "versions": ["v3"],
        "platform": "",
        "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
        "outputs": [{"name": "proba", "datatype": "FP32", "shape": [1, 2]}],
        "custom": {"team": "ml"},
    },
}
ENVIRONMENTS = [pytest.param(ENV_JSON, id="json"), pytest.param(ENV_YAML, id="yaml")]


def settings_from(model_metadata: str) -> ComponentSettings:
    env = {"PREDICTIVE_UNIT_IMAGE": "repo/model:1.0", "MODEL_METADATA": model_metadata}
    return ComponentSettings.from_env(env, annotations={})


async def rest_get(user: Any, settings: ComponentSettings, path: str) -> httpx.Response:
    app = RestApp(ComponentDataPlane(user, settings))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)
    finally:
        app.dataplane.close()


@pytest.mark.parametrize("model_metadata", ENVIRONMENTS)
async def test_rest_model_metadata_env_merged_over_init_metadata(model_metadata):
    response = await rest_get(Described(), settings_from(model_metadata), "/api/v1.0/metadata")
    assert response.status_code == 200, response.text
    assert response.json() == MERGED[model_metadata]


@pytest.mark.parametrize("model_metadata", ENVIRONMENTS)
def test_grpc_model_metadata_env_merged_over_init_metadata(model_metadata):
    settings = settings_from(model_metadata)
    with (
        serve_grpc(
            Described(), unit_image=settings.unit_image, model_metadata=model_metadata
        ) as address,
        grpc.insecure_channel(address) as channel,
    ):
        model = pb_grpc.ModelStub(channel).Metadata(empty_pb2.Empty(), timeout=30)
        seldon = pb_grpc.SeldonStub(channel).ModelMetadata(
            pb.SeldonModelMetadataRequest(name="m"), timeout=30
        )
    assert model == seldon
    as_dict = json_format.MessageToDict(model)
    expected = MERGED[model_metadata]
    assert as_dict["name"] == expected["name"]
    assert as_dict["versions"] == expected["versions"]
    assert as_dict.get("platform", "") == expected["platform"]
    assert as_dict["custom"] == expected["custom"]
    assert len(as_dict.get("outputs", [])) == len(expected["outputs"])


async def test_defaults_come_from_the_image_when_nothing_else_is_given():
    class Plain:
        def predict(self, X, names):
            return X

    response = await rest_get(Plain(), settings_from(""), "/metadata")
    assert response.json() == {
        "name": "repo/model",
        "versions": ["1.0"],
        "platform": "",
        "inputs": [],
        "outputs": [],
        "custom": {},
    }


INVALID = [
    pytest.param('{"colour": "red"}', "unknown fields ['colour']", id="unknown-field"),
    pytest.param("custom: {a: 1}", "custom must map strings to strings", id="custom-not-str"),
    pytest.param("inputs: [{schema: {}}]", "inputs[0] needs either messagetype", id="bad-io"),
]


@pytest.mark.parametrize(("model_metadata", "words"), INVALID)
async def test_rest_invalid_metadata_is_bad_metadata(seldon_error, model_metadata, words):
    settings = settings_from(model_metadata)
    for path in ("/metadata", "/api/v1.0/metadata"):
        response = await rest_get(Described(), settings, path)
        block = seldon_error(response, 500, "MICROSERVICE_BAD_METADATA", words)
        assert block["info"].startswith("Model metadata unavailable")  # Seldon's words first


@pytest.mark.parametrize(("model_metadata", "words"), INVALID)
def test_grpc_invalid_metadata_is_bad_metadata(model_metadata, words):
    with (
        serve_grpc(Described(), model_metadata=model_metadata) as address,
        grpc.insecure_channel(address) as channel,
    ):
        errors = []
        for call in (
            lambda: pb_grpc.ModelStub(channel).Metadata(empty_pb2.Empty(), timeout=30),
            lambda: pb_grpc.SeldonStub(channel).ModelMetadata(
                pb.SeldonModelMetadataRequest(), timeout=30
            ),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            errors.append(caught.value)
        request = pb.SeldonMessage(strData="still served")
        answer = pb_grpc.ModelStub(channel).Predict(request, timeout=30)
    for error in errors:
        assert error.code() is grpc.StatusCode.INTERNAL
        assert "Model metadata unavailable" in (error.details() or "")
        assert words in (error.details() or "")
    assert answer.strData == "still served"
