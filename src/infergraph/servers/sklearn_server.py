"""``SKLEARN_SERVER``: a scikit-learn estimator saved with joblib, pickle or skops.

Unpickling a file runs whatever code the file asks for. A model on the user's own disk is
trusted (they put it there); one fetched from a remote URI is not, unless the deployment
says so, because whoever can write to that bucket or URL would otherwise run code in the
server. skops files hold no code: from a remote URI they load with the types skops trusts
by default plus those listed in ``skops_trusted_types``; from a trusted source with every
type they name, like a pickle would.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from infergraph.errors import LoadError
from infergraph.servers.base import ModelServer, require
from infergraph.settings import ComponentSettings

__all__ = ["METHODS", "SKLearnServer"]

METHODS = ("predict_proba", "predict", "decision_function")
PICKLE_FILES = ("model.joblib", "model.pkl", "model.pickle")
SKOPS_FILE = "model.skops"
_EXTRA = "sklearn"


class SKLearnServer(ModelServer):
    """Seldon's ``SKLearnServer(model_uri, method="predict_proba")``.

    Loads ``model.skops`` if present (safe), else ``model.joblib``, ``model.pkl`` or
    ``model.pickle``. ``method`` is the estimator method each prediction calls.
    """

    implementation = "SKLEARN_SERVER"
    platform = "sklearn"
    model_files = (SKOPS_FILE, *PICKLE_FILES)

    def __init__(
        self,
        model_uri: str,
        method: str = "predict_proba",
        trust_remote_pickle: bool = False,
        skops_trusted_types: str = "",
        settings: ComponentSettings | None = None,
    ) -> None:
        super().__init__(model_uri, settings)
        if method not in METHODS:
            raise LoadError(
                f"SKLEARN_SERVER: method {method!r} is not one it can call; use one of "
                f"{', '.join(METHODS)}"
            )
        self.method = method
        self.v2_output_name = method
        self.trust_remote_pickle = trust_remote_pickle
        self.skops_trusted_types = [t.strip() for t in skops_trusted_types.split(",") if t.strip()]
        self._model: Any = None
        self._call: Any = None
        self._pandas: Any = None

    def load(self) -> None:
        path = self.find_model_file()
        source = self.remote_origin()
        trusted = source is None or self.trust_remote_pickle or self.settings.trust_remote_pickle
        if path.suffix == ".skops":
            self._model = self._load_skops(path, trusted)
        elif not trusted:
            raise LoadError(
                f"SKLEARN_SERVER refuses to unpickle {path.name} downloaded from {source}: "
                "unpickling runs any code the file contains, so whoever can write there "
                "could run code here. If you trust that source, set the parameter "
                "trust_remote_pickle (BOOL, true) or the env INFERGRAPH_TRUST_REMOTE_PICKLE=1. "
                "Better, save the model with skops (skops.io.dump(model, 'model.skops')), "
                "which loads without running code"
            )
        elif path.suffix == ".joblib":
            joblib = require("joblib", _EXTRA, self.implementation)
            self._model = _wrap_load(lambda: joblib.load(path), path.name)
        else:
            with path.open("rb") as f:
                self._model = _wrap_load(lambda: pickle.load(f), path.name)
        self._call = getattr(self._model, self.method, None)
        if not callable(self._call):
            others = [m for m in METHODS if callable(getattr(self._model, m, None))]
            raise LoadError(
                f"SKLEARN_SERVER: the model in {path.name} ({type(self._model).__name__}) has "
                f"no method {self.method}; set the parameter method to one it has: "
                f"{', '.join(others) or 'none of ' + ', '.join(METHODS)}"
            )
        if getattr(self._model, "feature_names_in_", None) is not None:
            self._pandas = require("pandas", _EXTRA, self.implementation)

    def _load_skops(self, path: Path, trusted: bool) -> Any:
        sio = require("skops.io", _EXTRA, self.implementation)
        unknown = sio.get_untrusted_types(file=path)
        allowed = unknown if trusted else self.skops_trusted_types
        refused = sorted(set(unknown) - set(allowed))
        if refused:
            raise LoadError(
                f"SKLEARN_SERVER: {path.name} from {self.remote_origin()} holds types skops "
                f"does not trust by default: {', '.join(refused)}. If you trust them, list "
                "them in the parameter skops_trusted_types (comma-separated), or trust the "
                "source with trust_remote_pickle / INFERGRAPH_TRUST_REMOTE_PICKLE=1"
            )
        return _wrap_load(lambda: sio.load(path, trusted=allowed or None), path.name)

    def predict(self, X: Any, feature_names: Any = None, meta: Any = None) -> Any:
        if self._call is None:
            self.load()
        if self._pandas is not None and not isinstance(X, self._pandas.DataFrame):
            # an estimator fitted on a DataFrame wants its columns back, by name
            X = np.asarray(X)
            if feature_names and X.ndim == 2 and len(feature_names) == X.shape[1]:
                X = self._pandas.DataFrame(X, columns=list(feature_names))
        elif not isinstance(X, np.ndarray) and type(X).__name__ != "DataFrame":
            X = np.asarray(X)
        return self._call(X)


def _wrap_load(load: Callable[[], Any], name: str) -> Any:
    try:
        return load()
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(
            f"SKLEARN_SERVER cannot load {name}: {type(exc).__name__}: {exc}; was it saved "
            "with the same scikit-learn version as the one installed here?"
        ) from exc
