"""MLFLOW_SERVER: MLflow models saved with mlflow (``mlflow-skinny`` is enough) answer
what ``mlflow.pyfunc`` answers; ``xtype: DataFrame`` names the columns, and a DataFrame
answer names the response's columns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infergraph.errors import LoadError, NotImplementedByComponent
from infergraph.servers import MLFlowServer
from infergraph.settings import ComponentSettings
from tests.conftest import ClientFactory
from tests.helpers.model_files import ROW, X, classifier

# importing mlflow warns about its own type hints; that is MLflow's business
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*")

SETTINGS = ComponentSettings()
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def save_sklearn(folder: Path) -> Any:
    import mlflow.sklearn

    model = classifier()
    # given requirements, MLflow need not infer them in a subprocess (seconds)
    mlflow.sklearn.save_model(model, str(folder), pip_requirements=["scikit-learn"])
    return model


def test_ndarray_predictions_equal_mlflows(tmp_path: Path) -> None:
    model = save_sklearn(tmp_path / "m")
    server = MLFlowServer(str(tmp_path / "m"), settings=SETTINGS)
    server.load()
    np.testing.assert_array_equal(server.predict(X[:5], []), model.predict(X[:5]))
    with pytest.raises(NotImplementedByComponent):  # the runtime's default names apply
        server.class_names()


class Columns:
    """A pyfunc model that answers a DataFrame built from the input's named columns."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # (no type hints: MLflow would try to infer a signature from them)
        import pandas as pd

        area = model_input["petal_length"] * model_input["petal_width"]
        return pd.DataFrame({"petal_area": area})


async def test_dataframe_in_and_out(tmp_path: Path, asgi_client: ClientFactory) -> None:
    import mlflow.pyfunc

    class Model(Columns, mlflow.pyfunc.PythonModel):
        pass

    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=Model(), pip_requirements=[])
    server = MLFlowServer(str(tmp_path / "m"), xtype="DataFrame", settings=SETTINGS)
    client = asgi_client(server)
    body = {"data": {"names": NAMES, "ndarray": ROW}}
    response = await client.post("/api/v1.0/predictions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["names"] == ["petal_area"]
    np.testing.assert_allclose(data["ndarray"], [[1.4 * 0.2]])


def test_unknown_xtype_fails_at_construction() -> None:
    with pytest.raises(LoadError, match="use ndarray or DataFrame"):
        MLFlowServer("/models", xtype="tensor", settings=SETTINGS)


def test_a_folder_without_mlmodel(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"")
    with pytest.raises(LoadError, match=r"expected one of MLmodel, found model\.pkl"):
        MLFlowServer(str(tmp_path), settings=SETTINGS).load()


def test_a_missing_mlflow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(LoadError, match=r"pip install 'infergraph\[mlflow\]'"):
        MLFlowServer(str(tmp_path), settings=SETTINGS).load()
