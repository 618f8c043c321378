"""Train (once) and load the iris LogisticRegression that every benchmark target serves.

All servers must serve the *same* fitted model so that the comparison measures the
serving stack, not the model. Fitting is deterministic (lbfgs on a fixed data set), and
the result is cached as a joblib file under ``bench/.cache/`` keyed by the scikit-learn
version, because each peer runs in its own virtualenv and a pickle is only guaranteed to
load in the version that wrote it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache"

# One row of iris features; the request body every target receives.
SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]


def _cache_path() -> Path:
    import sklearn

    return CACHE_DIR / f"iris-logreg-sklearn-{sklearn.__version__}.joblib"


def train() -> Any:
    """Fit LogisticRegression(max_iter=1000) on the full iris data set."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    return LogisticRegression(max_iter=1000).fit(data.data, data.target)


def load_model() -> Any:
    """Return the cached model, training and caching it first if needed.

    The file is written to a temporary name and renamed into place so that servers
    started concurrently never read a half-written pickle.
    """
    import joblib

    path = _cache_path()
    if path.exists():
        return joblib.load(path)
    model = train()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model
