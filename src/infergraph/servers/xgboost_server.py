"""``XGBOOST_SERVER``: an XGBoost Booster saved as JSON, UBJSON or the old binary format.

The file is read into memory and handed to XGBoost as bytes: XGBoost then recognises the
format from its content, so a ``model.bst`` written by any version loads without the
warning XGBoost gives for an unknown extension. Predictions use ``inplace_predict``, which
skips building a DMatrix per request.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import LoadError
from infergraph.servers.base import ModelServer, require
from infergraph.settings import ComponentSettings

__all__ = ["XGBoostServer"]


class XGBoostServer(ModelServer):
    """Seldon's ``XGBoostServer(model_uri)``: ``model.json``, ``model.ubj`` or (deprecated)
    ``model.bst``; answers what ``Booster.predict`` answers (class probabilities for
    ``multi:softprob``)."""

    implementation = "XGBOOST_SERVER"
    platform = "xgboost"
    model_files = ("model.json", "model.ubj", "model.bst")
    v2_output_name = "predict"

    def __init__(self, model_uri: str, settings: ComponentSettings | None = None) -> None:
        super().__init__(model_uri, settings)
        self._booster: Any = None

    def load(self) -> None:
        xgb = require("xgboost", "xgboost", self.implementation)
        path = self.find_model_file()
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(path.read_bytes()))
        except Exception as exc:
            raise LoadError(
                f"XGBOOST_SERVER cannot load {path.name}: {type(exc).__name__}: {exc}; save "
                "the model with booster.save_model('model.json')"
            ) from exc
        self._booster = booster

    def predict(self, X: Any, feature_names: Any = None, meta: Any = None) -> Any:
        if self._booster is None:
            self.load()
        if not isinstance(X, np.ndarray) and type(X).__name__ != "DataFrame":
            X = np.asarray(X)
        return self._booster.inplace_predict(X)
