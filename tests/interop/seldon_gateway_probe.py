"""Call ``infergraph serve`` the way a client configured for a cluster does: seldon-core's
``SeldonClient`` with ``gateway="istio"`` (or ``"ambassador"``), a namespace and a deployment
name, over REST (``/seldon/<namespace>/<deployment>/api/v1.0/...``) and gRPC (metadata
``seldon`` and ``namespace``).

Run it with ``.venv-seldon/bin/python``: it imports ``seldon_core``. It prints one JSON
object per call::

    {"case": "istio-rest-predict", "success": true, "msg": "", "response": {...}}

The expected answers live in ``test_seldon_client.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

X = np.array([[1.0, 2.0]])
REWARD = 1.0


def _emit(case: str, call: Callable[[], Any]) -> Any:
    from google.protobuf.json_format import MessageToDict

    record: dict[str, Any] = {"case": case, "success": False, "msg": "", "response": None}
    result = None
    try:
        result = call()
    except Exception as exc:
        record["msg"] = "".join(traceback.format_exception_only(exc)).strip()
    if result is not None:
        record["success"] = bool(result.success)
        record["msg"] = record["msg"] or str(result.msg)
        response = result.response
        if response is not None:  # a dict or a SeldonMessage, by client_return_type
            record["response"] = response if isinstance(response, dict) else MessageToDict(response)
    print(json.dumps(record, sort_keys=True), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", required=True, help="host:port of the REST gateway")
    parser.add_argument("--grpc", required=True, help="host:port of the gRPC gateway")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--deployment", required=True)
    args = parser.parse_args(argv)

    from seldon_core.seldon_client import SeldonClient

    endpoints = {"rest": args.http, "grpc": args.grpc}
    setups = {
        "istio": ("istio", args.namespace, args.deployment),
        "ambassador": ("ambassador", None, args.deployment),  # one namespace: no namespace
        "wrong-namespace": ("istio", "elsewhere", args.deployment),
    }
    for name, (gateway, namespace, deployment) in setups.items():
        for transport, endpoint in endpoints.items():
            client = SeldonClient(
                gateway=gateway,
                transport=transport,
                namespace=namespace,
                deployment_name=deployment,
                gateway_endpoint=endpoint,
                client_return_type="proto",  # feedback takes the request and response back
            )
            first = _emit(
                f"{name}-{transport}-predict",
                lambda c=client: c.predict(data=X, payload_type="ndarray"),
            )
            if name == "wrong-namespace" or first is None or not first.success:
                continue
            _emit(
                f"{name}-{transport}-feedback",
                lambda c=client, r=first: c.feedback(
                    prediction_request=r.request, prediction_response=r.response, reward=REWARD
                ),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
