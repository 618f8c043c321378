"""``MLFLOW_SERVER``: any MLflow model with a ``python_function`` flavour.

MLflow's ``pyfunc`` loader already knows every flavour, so the server only shapes the
input (an ndarray, or a DataFrame whose columns are the request's feature names, as
Seldon's ``xtype`` parameter chose) and the output: a DataFrame's columns become the
response's names. ``mlflow-skinny`` is enough; Seldon's image also built the model's
conda environment at start, which infergraph leaves to the image (or the user's venv).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import LoadError, NotImplementedByComponent
from infergraph.servers.base import ModelServer, require
from infergraph.settings import ComponentSettings

__all__ = ["XTYPES", "MLFlowServer"]

XTYPES = ("ndarray", "DataFrame")


class MLFlowServer(ModelServer):
    """Seldon's ``MLFlowServer(model_uri, xtype="ndarray")``: the folder holding
    ``MLmodel``, loaded with ``mlflow.pyfunc.load_model``."""

    implementation = "MLFLOW_SERVER"
    platform = "mlflow"
    model_files = ("MLmodel",)
    v2_output_name = "predict"

    def __init__(
        self, model_uri: str, xtype: str = "ndarray", settings: ComponentSettings | None = None
    ) -> None:
        super().__init__(model_uri, settings)
        if xtype not in XTYPES:
            raise LoadError(
                f"MLFLOW_SERVER: xtype {xtype!r} is not one it knows; use {' or '.join(XTYPES)}"
            )
        self.xtype = xtype
        self._model: Any = None
        self._pandas: Any = None
        self._columns: list[str] | None = None

    def load(self) -> None:
        pyfunc = require("mlflow.pyfunc", "mlflow", self.implementation)
        self._pandas = require("pandas", "mlflow", self.implementation)
        self.find_model_file()  # a clear message when the folder holds no MLmodel
        try:
            self._model = pyfunc.load_model(str(self.model_dir()))
        except Exception as exc:
            raise LoadError(
                f"MLFLOW_SERVER cannot load the model in {self.model_dir()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def predict(self, X: Any, feature_names: Any = None, meta: Any = None) -> Any:
        if self._model is None:
            self.load()
        pd = self._pandas
        if self.xtype == "DataFrame" and not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=list(feature_names) if feature_names else None)
        result = self._model.predict(X)
        if isinstance(result, pd.DataFrame):
            self._columns = [str(c) for c in result.columns]
            return result.to_numpy()
        if isinstance(result, pd.Series):
            return result.to_numpy()
        return result if isinstance(result, np.ndarray | list | dict | str) else np.asarray(result)

    def class_names(self) -> list[str]:
        """The columns of the last DataFrame answer; before one, the runtime's defaults."""
        if self._columns is None:
            raise NotImplementedByComponent("no DataFrame answer yet")
        return self._columns
