"""A MODEL refusing inputs above a limit with SeldonMicroserviceException."""

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException


class SeldonFailing:
    def __init__(self, limit=100.0):
        self.limit = limit

    def predict(self, X, features_names, meta=None):
        if np.max(X) > self.limit:
            raise SeldonMicroserviceException(
                f"input above limit {self.limit}", status_code=422, reason="MODEL_REFUSED"
            )
        return X
