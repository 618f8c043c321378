"""XGBOOST_SERVER and LIGHTGBM_SERVER: real boosters in each saved format answer exactly
what the library answers; a missing library names the extra to install."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infergraph.errors import LoadError
from infergraph.servers import LightGBMServer, XGBoostServer
from infergraph.settings import ComponentSettings
from tests.helpers.model_files import ROW, X, Y, write_lightgbm, write_xgboost

SETTINGS = ComponentSettings()


@pytest.mark.parametrize("name", ["model.json", "model.ubj", "model.bst"])
def test_xgboost_predictions_equal_the_boosters(tmp_path: Path, name: str) -> None:
    import xgboost as xgb

    booster = write_xgboost(tmp_path, name)
    server = XGBoostServer(str(tmp_path), settings=SETTINGS)
    server.load()
    got = server.predict(X[:5], [])
    np.testing.assert_array_equal(got, booster.predict(xgb.DMatrix(X[:5])))
    assert got.shape == (5, 3)
    assert server.v2_output_name == "predict"


def test_xgboost_scikit_learn_wrapper_model(tmp_path: Path) -> None:
    import xgboost as xgb

    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(X, Y)
    model.save_model(tmp_path / "model.json")
    server = XGBoostServer(str(tmp_path), settings=SETTINGS)
    server.load()
    np.testing.assert_allclose(server.predict(ROW), model.predict_proba(np.array(ROW)))


def test_xgboost_json_wins_over_the_deprecated_bst(tmp_path: Path) -> None:
    write_xgboost(tmp_path, "model.json")
    (tmp_path / "model.bst").write_bytes(b"not a model")
    server = XGBoostServer(str(tmp_path), settings=SETTINGS)
    server.load()
    assert server.predict(ROW).shape == (1, 3)


def test_xgboost_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(LoadError, match=r"XGBOOST_SERVER cannot load model\.json"):
        XGBoostServer(str(tmp_path), settings=SETTINGS).load()


@pytest.mark.parametrize("name", ["model.txt", "model.bst"])
def test_lightgbm_predictions_equal_the_boosters(tmp_path: Path, name: str) -> None:
    booster = write_lightgbm(tmp_path, name)
    server = LightGBMServer(str(tmp_path), settings=SETTINGS)
    server.load()
    np.testing.assert_array_equal(server.predict(X[:5], []), booster.predict(X[:5]))
    assert server.init_metadata() == {"platform": "lightgbm"}


@pytest.mark.parametrize(
    ("cls", "module", "extra", "write"),
    [
        pytest.param(XGBoostServer, "xgboost", "xgboost", write_xgboost, id="xgboost"),
        pytest.param(LightGBMServer, "lightgbm", "lightgbm", write_lightgbm, id="lightgbm"),
    ],
)
def test_a_missing_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: Any, module: str, extra: str, write: Any
) -> None:
    write(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)
    server = cls(str(tmp_path), settings=SETTINGS)  # constructing never imports the library
    with pytest.raises(LoadError) as info:
        server.load()
    assert f"pip install 'infergraph[{extra}]'" in str(info.value)
    assert cls.implementation in str(info.value)
