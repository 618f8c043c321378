"""A MODEL reading its weights in load() from the folder Storage.download gives it:
the ``model_uri`` as it is, and a copy in a folder of its own."""

import json
import os
import tempfile

import numpy as np
from seldon_core import Storage


class SeldonStorageModel:
    def __init__(self, model_uri):
        self.model_uri = model_uri
        self.weights = None

    def load(self):
        in_place = Storage.download(self.model_uri)
        copy = Storage.download(self.model_uri, out_dir=tempfile.mkdtemp())
        with open(os.path.join(in_place, "weights.json")) as f:
            weights = json.load(f)
        with open(os.path.join(copy, "weights.json")) as f:
            assert json.load(f) == weights, "the downloaded copy differs"
        self.weights = weights

    def predict(self, X, features_names, meta=None):
        return np.asarray(X, dtype=float) * self.weights["w"] + self.weights["b"]
