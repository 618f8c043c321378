"""Tiny real models for the prepackaged-server tests, trained on iris in milliseconds.

Each ``write_*`` saves a model the way its library documents and returns the trained
object, so a test can compare the server's answer with the library's own. Models are
trained once per session (``functools.cache``) and written into each test's folder.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge

__all__ = [
    "ROW",
    "X",
    "Y",
    "classifier",
    "regressor",
    "write_lightgbm",
    "write_onnx",
    "write_sklearn",
    "write_xgboost",
]

X, Y = load_iris(return_X_y=True)
ROW = [[5.1, 3.5, 1.4, 0.2]]


@functools.cache
def classifier() -> LogisticRegression:
    return LogisticRegression(max_iter=300).fit(X, Y)


@functools.cache
def regressor() -> Ridge:
    return Ridge().fit(X, Y)


def write_sklearn(folder: Path, fmt: str = "joblib", model: Any = None) -> Any:
    """Save ``model`` (default: the iris classifier) as model.<fmt> in ``folder``."""
    model = classifier() if model is None else model
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model.{fmt}"
    if fmt == "joblib":
        joblib.dump(model, path)
    elif fmt == "skops":
        import skops.io

        skops.io.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model))
    return model


@functools.cache
def _xgboost() -> Any:
    import xgboost as xgb

    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(X, label=Y), num_boost_round=4)


def write_xgboost(folder: Path, name: str = "model.json") -> Any:
    """Save a Booster; ``model.bst`` is written as raw bytes, as old XGBoost versions did."""
    booster = _xgboost()
    folder.mkdir(parents=True, exist_ok=True)
    if name.endswith(".bst"):
        (folder / name).write_bytes(bytes(booster.save_raw("ubj")))
    else:
        booster.save_model(folder / name)
    return booster


@functools.cache
def _lightgbm() -> Any:
    import lightgbm as lgb

    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(X, label=Y), num_boost_round=4)


def write_lightgbm(folder: Path, name: str = "model.txt") -> Any:
    booster = _lightgbm()
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / name))
    return booster


def write_onnx(folder: Path, name: str = "model.onnx") -> Any:
    """The iris classifier converted by skl2onnx: outputs ``label`` and ``probabilities``."""
    from skl2onnx import to_onnx

    model = classifier()
    onx = to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(onx.SerializeToString())
    return model
