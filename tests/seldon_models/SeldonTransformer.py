"""A TRANSFORMER: adds one to the input and tags the request."""

import numpy as np
from seldon_core.user_model import SeldonComponent


class SeldonTransformer(SeldonComponent):
    def transform_input(self, X, feature_names, meta=None):
        return np.asarray(X, dtype=float) + 1

    def tags(self):
        return {"transformer": "seen"}
