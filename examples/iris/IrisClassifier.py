"""A Seldon Core v1 style model class, served unchanged by `infergraph microservice`.

It trains a LogisticRegression on scikit-learn's bundled iris data set in `load()`,
which runs once in every worker process.
"""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


class IrisClassifier:
    def __init__(self, max_iter=1000):
        self.max_iter = int(max_iter)
        self.model = None

    def load(self):
        data = load_iris()
        self.model = LogisticRegression(max_iter=self.max_iter).fit(data.data, data.target)
        self._names = list(data.target_names)

    def predict(self, X, features_names=None):
        return self.model.predict_proba(X)

    def class_names(self):
        return self._names

    def tags(self):
        return {"model": "iris-logreg"}

    def metrics(self):
        return [{"type": "COUNTER", "key": "iris_predictions", "value": 1}]
