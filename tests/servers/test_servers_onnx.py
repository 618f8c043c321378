"""ONNX_SERVER: a scikit-learn model converted by skl2onnx and run by ONNX Runtime answers
what scikit-learn answers; its metadata lists the model's real tensors in V2 form."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from infergraph.errors import BadRequest, LoadError
from infergraph.servers import ONNXServer
from infergraph.settings import ComponentSettings
from tests.conftest import ClientFactory
from tests.helpers.model_files import ROW, X, write_onnx

SETTINGS = ComponentSettings()


def test_first_output_by_default(tmp_path: Path) -> None:
    model = write_onnx(tmp_path)
    server = ONNXServer(str(tmp_path), settings=SETTINGS)
    server.load()
    np.testing.assert_array_equal(server.predict(X[:10], []), model.predict(X[:10]))
    assert server.v2_output_name == "label"


def test_the_output_parameter_picks_one(tmp_path: Path) -> None:
    model = write_onnx(tmp_path)
    server = ONNXServer(str(tmp_path), output="probabilities", settings=SETTINGS)
    server.load()
    got = server.predict(np.array(ROW))  # float64 in; the model takes float32
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model.predict_proba(ROW), rtol=1e-5, atol=1e-6)
    assert server.v2_output_name == "probabilities"


def test_inputs_by_name(tmp_path: Path) -> None:
    model = write_onnx(tmp_path, "iris.onnx")  # the folder's only .onnx file will do
    server = ONNXServer(str(tmp_path), settings=SETTINGS)
    np.testing.assert_array_equal(server.predict({"X": ROW}), model.predict(ROW))
    with pytest.raises(BadRequest, match="are not inputs of the model; its inputs are X"):
        server.predict({"images": ROW})


def test_unknown_output_fails_at_load(tmp_path: Path) -> None:
    write_onnx(tmp_path)
    with pytest.raises(LoadError, match=r"output='scores' names no output.*label, probabilities"):
        ONNXServer(str(tmp_path), output="scores", settings=SETTINGS).load()


def test_default_metadata_lists_the_tensors(tmp_path: Path) -> None:
    write_onnx(tmp_path)
    assert ONNXServer(str(tmp_path), settings=SETTINGS).init_metadata() == {
        "platform": "onnx",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }


def test_metadata_yaml_overrides_the_defaults(tmp_path: Path) -> None:
    write_onnx(tmp_path)
    (tmp_path / "metadata.yaml").write_text("name: iris-onnx\nplatform: onnxruntime\n")
    meta = ONNXServer(str(tmp_path), settings=SETTINGS).init_metadata()
    assert (meta["name"], meta["platform"], len(meta["inputs"])) == ("iris-onnx", "onnxruntime", 1)


def test_a_missing_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_onnx(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(LoadError, match=r"pip install 'infergraph\[onnx\]'"):
        ONNXServer(str(tmp_path), settings=SETTINGS).load()


@pytest.mark.parametrize(("output", "name"), [("", "label"), ("probabilities", "probabilities")])
async def test_v2_answers_name_the_output(
    tmp_path: Path, asgi_client: ClientFactory, output: str, name: str
) -> None:
    model = write_onnx(tmp_path)
    client = asgi_client(
        ONNXServer(str(tmp_path), output=output, settings=SETTINGS), unit_id="iris"
    )
    body = {"inputs": [{"name": "X", "datatype": "FP64", "shape": [1, 4], "data": ROW[0]}]}
    response = await client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    (tensor,) = response.json()["outputs"]
    assert tensor["name"] == name
    expected = model.predict(ROW) if name == "label" else model.predict_proba(ROW)
    np.testing.assert_allclose(tensor["data"], np.ravel(expected), rtol=1e-5, atol=1e-6)
