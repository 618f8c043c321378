"""KServe model server for the iris LogisticRegression, started the way KServe users do.

Run with the kserve virtualenv (``.venv-kserve/bin/python bench/models/kserve_iris.py
--http_port P --grpc_port G``). The command line is KServe's own argument parser, so the
flags and defaults are KServe's. Serves the V1 protocol at ``/v1/models/iris:predict``.
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
import numpy as np
from iris_data import load_model
from kserve import model_server


class IrisKServeModel(kserve.Model):
    """V1 protocol: ``{"instances": [[...]]}`` in, ``{"predictions": [[...]]}`` out."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model: Any = None

    def load(self) -> bool:
        self.model = load_model()
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        instances = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self.model.predict_proba(instances).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    model = IrisKServeModel("iris")
    model.load()
    kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
    ).start([model])


if __name__ == "__main__":
    main()
