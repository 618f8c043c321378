"""SKLEARN_SERVER: real iris models in every format, served by the real component runtime;
metadata.yaml; and the rule that a remote pickle is only unpickled when trusted."""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from infergraph.errors import BadMetadata, LoadError
from infergraph.servers import SKLearnServer, storage
from infergraph.settings import ComponentSettings
from tests.conftest import ClientFactory
from tests.helpers import model_stores
from tests.helpers.model_files import ROW, X, Y, regressor, write_sklearn
from tests.helpers.model_stores import HttpRoot

http_root = model_stores.http_root


def server(uri: str | Path, tmp_path: Path, **kwargs: Any) -> SKLearnServer:
    settings = kwargs.pop("settings", ComponentSettings(model_cache_dir=str(tmp_path / "cache")))
    return SKLearnServer(str(uri), settings=settings, **kwargs)


@pytest.mark.parametrize("fmt", ["joblib", "pkl", "pickle", "skops"])
@pytest.mark.parametrize("method", ["predict_proba", "predict", "decision_function"])
def test_predictions_equal_scikit_learns(tmp_path: Path, fmt: str, method: str) -> None:
    model = write_sklearn(tmp_path / "m", fmt)
    s = server(tmp_path / "m", tmp_path, method=method)
    s.load()
    np.testing.assert_array_equal(s.predict(X[:5], []), getattr(model, method)(X[:5]))
    assert s.v2_output_name == method


def test_a_model_file_uri_is_enough(tmp_path: Path) -> None:
    model = write_sklearn(tmp_path, "joblib")
    s = server((tmp_path / "model.joblib").as_uri(), tmp_path)
    s.load()
    np.testing.assert_array_equal(s.predict(np.array(ROW)), model.predict_proba(ROW))


def test_unknown_method_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="use one of predict_proba, predict, decision_function"):
        server(tmp_path, tmp_path, method="transform")


def test_a_method_the_model_lacks_fails_at_load(tmp_path: Path) -> None:
    write_sklearn(tmp_path, "joblib", regressor())
    s = server(tmp_path, tmp_path)
    with pytest.raises(LoadError) as info:
        s.load()
    assert "Ridge" in str(info.value) and "has no method predict_proba" in str(info.value)
    assert "method to one it has: predict" in str(info.value)


def test_no_model_file_lists_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(LoadError, match=r"expected one of model.skops, model.joblib.*weights.h5"):
        server(tmp_path, tmp_path).load()


def test_a_model_fitted_on_a_dataframe_gets_its_columns(tmp_path: Path) -> None:
    import pandas as pd

    names = ["sl", "sw", "pl", "pw"]
    model = LogisticRegression(max_iter=300).fit(pd.DataFrame(X, columns=names), Y)
    write_sklearn(tmp_path, "joblib", model)
    s = server(tmp_path, tmp_path)
    s.load()
    expected = model.predict_proba(pd.DataFrame(ROW, columns=names))
    np.testing.assert_array_equal(s.predict(np.array(ROW), names), expected)  # no warning
    np.testing.assert_array_equal(s.predict(pd.DataFrame(ROW, columns=names)), expected)


# ---------------------------------------------------------------- metadata


def test_metadata_yaml_next_to_the_model(tmp_path: Path) -> None:
    write_sklearn(tmp_path, "joblib")
    (tmp_path / "metadata.yaml").write_text(
        "name: iris\nversions: [v2]\ninputs:\n- {name: X, datatype: FP64, shape: [-1, 4]}\n"
    )
    meta = server(tmp_path, tmp_path).init_metadata()
    assert meta == {
        "name": "iris",
        "versions": ["v2"],
        "platform": "sklearn",
        "inputs": [{"name": "X", "datatype": "FP64", "shape": [-1, 4]}],
    }


def test_default_metadata_names_the_platform(tmp_path: Path) -> None:
    write_sklearn(tmp_path, "joblib")
    assert server(tmp_path, tmp_path).init_metadata() == {"platform": "sklearn"}


@pytest.mark.parametrize("text", ["name: [unclosed", "- a list"], ids=["bad-yaml", "a-list"])
def test_broken_metadata_yaml_is_bad_metadata(tmp_path: Path, text: str) -> None:
    (tmp_path / "metadata.yaml").write_text(text)
    with pytest.raises(BadMetadata, match=r"metadata\.yaml"):
        server(tmp_path, tmp_path).init_metadata()


# ---------------------------------------------------------------- through the runtime


async def test_served_by_the_component_runtime(tmp_path: Path, asgi_client: ClientFactory) -> None:
    model = write_sklearn(tmp_path, "joblib")
    (tmp_path / "metadata.yaml").write_text("name: iris\nversions: [v1]\n")
    client = asgi_client(
        server(tmp_path, tmp_path), unit_id="iris", unit_image="seldonio/sklearnserver:1.18"
    )
    response = await client.post("/api/v1.0/predictions", json={"data": {"ndarray": ROW}})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["data"]["ndarray"], model.predict_proba(ROW))
    assert body["data"]["names"] == ["t:0", "t:1", "t:2"]
    meta = (await client.get("/metadata")).json()
    assert (meta["name"], meta["versions"], meta["platform"]) == ("iris", ["v1"], "sklearn")

    v2 = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": ROW[0]}]}
    response = await client.post("/v2/models/iris/infer", json=v2)
    assert response.status_code == 200, response.text
    (tensor,) = response.json()["outputs"]
    assert (tensor["name"], tensor["shape"]) == ("predict_proba", [1, 3])
    np.testing.assert_allclose(tensor["data"], model.predict_proba(ROW)[0])


# ---------------------------------------------------------------- trust


def publish(http_root: HttpRoot, fmt: str, model: Any = None) -> tuple[str, Any]:
    model = write_sklearn(http_root.folder, fmt, model)
    return f"{http_root.url}/model.{fmt}", model


def test_a_remote_pickle_is_refused_by_default(http_root: HttpRoot, tmp_path: Path) -> None:
    uri, _ = publish(http_root, "joblib")
    with pytest.raises(LoadError) as info:
        server(uri, tmp_path).load()
    message = str(info.value)
    assert f"refuses to unpickle model.joblib downloaded from {uri}" in message
    assert "trust_remote_pickle" in message and "INFERGRAPH_TRUST_REMOTE_PICKLE=1" in message
    assert "model.skops" in message


@pytest.mark.parametrize("how", ["parameter", "settings"])
def test_a_trusted_remote_pickle_loads(http_root: HttpRoot, tmp_path: Path, how: str) -> None:
    uri, model = publish(http_root, "pkl")
    cache = str(tmp_path / "cache")
    if how == "parameter":
        s = server(uri, tmp_path, trust_remote_pickle=True)
    else:
        settings = ComponentSettings(model_cache_dir=cache, trust_remote_pickle=True)
        s = server(uri, tmp_path, settings=settings)
    s.load()
    np.testing.assert_array_equal(s.predict(np.array(ROW)), model.predict_proba(ROW))


def test_the_trust_setting_comes_from_the_environment() -> None:
    env = {"INFERGRAPH_TRUST_REMOTE_PICKLE": "1", "INFERGRAPH_MODEL_CACHE": "/c"}
    settings = ComponentSettings.from_env(env, annotations={})
    assert settings.trust_remote_pickle and settings.model_cache_dir == "/c"
    assert not ComponentSettings.from_env({}, annotations={}).trust_remote_pickle


def test_a_remote_skops_file_loads_without_trust(http_root: HttpRoot, tmp_path: Path) -> None:
    uri, model = publish(http_root, "skops")
    s = server(uri, tmp_path)
    s.load()
    np.testing.assert_array_equal(s.predict(np.array(ROW)), model.predict_proba(ROW))


def test_a_remote_skops_file_with_unknown_types(http_root: HttpRoot, tmp_path: Path) -> None:
    pipeline = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression(max_iter=300))
    uri, model = publish(http_root, "skops", pipeline.fit(X, Y))
    with pytest.raises(LoadError, match=r"_operator\.neg.*skops_trusted_types"):
        server(uri, tmp_path).load()
    s = server(uri, tmp_path, skops_trusted_types="_operator.neg")
    s.load()
    np.testing.assert_array_equal(s.predict(np.array(ROW)), model.predict_proba(np.array(ROW)))


def test_a_model_fetched_by_an_init_container_is_still_remote(
    http_root: HttpRoot, tmp_path: Path
) -> None:
    uri, _ = publish(http_root, "joblib")
    mounted = storage.download(uri, tmp_path / "mnt-models")  # what fetch-model does
    with pytest.raises(LoadError, match=f"downloaded from {uri}"):
        server(mounted, tmp_path).load()


def test_missing_joblib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sklearn(tmp_path, "joblib")
    monkeypatch.setitem(sys.modules, "joblib", None)
    with pytest.raises(LoadError, match=r"pip install 'infergraph\[sklearn\]'"):
        server(tmp_path, tmp_path).load()
