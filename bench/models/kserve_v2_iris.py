"""KServe model server for the iris LogisticRegression, serving the V2 protocol.

Run with the kserve virtualenv (``.venv-kserve/bin/python bench/models/kserve_v2_iris.py
--http_port P --grpc_port G``). The model class does what KServe's own ``sklearnserver``
does (``kserve.utils.utils.get_predict_input`` / ``get_predict_response`` around one
scikit-learn call), with ``predict_proba`` as that server's ``PREDICT_PROBA=true`` gives:
V2 REST at ``/v2/models/iris/infer`` and V2 gRPC (``inference.GRPCInferenceService``) on
the gRPC port, which ``kserve.ModelServer`` serves by default (``--enable_grpc`` is true).
The command line is KServe's own argument parser, so the flags and defaults are KServe's.
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
from iris_data import load_model
from kserve import model_server
from kserve.utils.utils import get_predict_input, get_predict_response


class IrisKServeV2Model(kserve.Model):
    """V2 in (``InferRequest``, from REST or gRPC), V2 out (``InferResponse``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model: Any = None

    def load(self) -> bool:
        self.model = load_model()
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        instances = get_predict_input(payload)
        return get_predict_response(payload, self.model.predict_proba(instances), self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    model = IrisKServeV2Model("iris")
    model.load()
    kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
    ).start([model])


if __name__ == "__main__":
    main()
