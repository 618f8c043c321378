"""``LIGHTGBM_SERVER``: a LightGBM Booster saved as text (``Booster.save_model``).

Seldon Core v1 had no LightGBM server (MLServer had one); this one follows the same
shape as the others so a graph can mix them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import LoadError
from infergraph.servers.base import ModelServer, require
from infergraph.settings import ComponentSettings

__all__ = ["LightGBMServer"]


class LightGBMServer(ModelServer):
    """``LightGBMServer(model_uri)``: ``model.txt`` or ``model.bst``; answers what
    ``Booster.predict`` answers (class probabilities for a multiclass objective)."""

    implementation = "LIGHTGBM_SERVER"
    platform = "lightgbm"
    model_files = ("model.txt", "model.bst")
    v2_output_name = "predict"

    def __init__(self, model_uri: str, settings: ComponentSettings | None = None) -> None:
        super().__init__(model_uri, settings)
        self._booster: Any = None

    def load(self) -> None:
        lgb = require("lightgbm", "lightgbm", self.implementation)
        path = self.find_model_file()
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except Exception as exc:
            raise LoadError(
                f"LIGHTGBM_SERVER cannot load {path.name}: {type(exc).__name__}: {exc}; save "
                "the model with booster.save_model('model.txt')"
            ) from exc

    def predict(self, X: Any, feature_names: Any = None, meta: Any = None) -> Any:
        if self._booster is None:
            self.load()
        if not isinstance(X, np.ndarray) and type(X).__name__ != "DataFrame":
            X = np.asarray(X)
        return self._booster.predict(X)
