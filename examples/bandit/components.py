"""Seldon Core v1 style classes for the bandit example, served unchanged by ``infergraph serve``.

Every class trains (or fits its statistics) in ``load()``, which runs once before serving,
on scikit-learn's bundled hand-written digits: 8x8 images, 64 pixel features, 10 classes,
with one fixed train/test split. The test split is what ``python -m infergraph.demo`` sends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

CLASS_NAMES = [f"digit_{i}" for i in range(10)]


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, X_test, y_train, y_test): 75% / 25%, stratified, always the same."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = X.std(axis=0)
    return X.mean(axis=0), np.where(std > 0, std, 1.0)  # border pixels are always 0


class Scaler:
    """TRANSFORMER: standardise each pixel with the training set's mean and deviation."""

    def load(self) -> None:
        self.mean, self.std = _statistics(split()[0])

    def transform_input(self, X: Any, features_names: Any = None, meta: Any = None) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std


class _Classifier:
    """MODEL: a classifier trained on the standardised training set; answers probabilities."""

    def make(self) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        X_train, _, y_train, _ = split()
        mean, std = _statistics(X_train)
        self.model = self.make().fit((X_train - mean) / std, y_train)

    def predict(self, X: Any, features_names: Any = None, meta: Any = None) -> np.ndarray:
        return self.model.predict_proba(X)

    def class_names(self) -> list[str]:
        return CLASS_NAMES


class LogisticModel(_Classifier):
    """The good model: multinomial logistic regression (about 97% accurate)."""

    def make(self) -> Any:
        return LogisticRegression(max_iter=1000)

    def tags(self) -> dict[str, str]:
        return {"model": "logistic-regression"}


class StumpModel(_Classifier):
    """The weak model: a decision tree of depth 1 (one pixel, one threshold)."""

    def make(self) -> Any:
        return DecisionTreeClassifier(max_depth=1, random_state=0)

    def tags(self) -> dict[str, str]:
        return {"model": "decision-stump"}
