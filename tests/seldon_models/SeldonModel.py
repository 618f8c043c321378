"""A MODEL subclassing SeldonComponent, answering with a SeldonResponse that carries
runtime tags and a counter, with its own class names."""

import numpy as np
from seldon_core.user_model import SeldonComponent, SeldonResponse, create_counter


class SeldonModel(SeldonComponent):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.rewards = []

    def predict(self, X, features_names, meta=None):
        out = np.asarray(X, dtype=float) * self.factor
        response = SeldonResponse(out, tags={"model": "seldon"})
        response.metrics.append(create_counter("seldon_model_rows", len(out)))
        return response

    def class_names(self):
        return ["a", "b"]

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.rewards.append(reward)
        return []
