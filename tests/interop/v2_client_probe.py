"""Call a running Open Inference Protocol (V2) server with clients that cannot live in .venv.

Run it with the kserve virtualenv (``.venv-kserve/bin/python``), never with the project's:
``tritonclient.grpc`` pins protobuf < 7 and .venv holds the newest protobuf. ``--lib``
picks one client library per process, because ``tritonclient.grpc`` and ``kserve`` cannot
be imported together: both register the protobuf package ``inference`` in the default
descriptor pool, and the second import fails with ``duplicate symbol
'inference.ServerLiveRequest'``.

- ``--lib triton``: ``tritonclient.grpc.InferenceServerClient`` (client ``triton-grpc``);
  it always sends tensors as ``raw_input_contents``.
- ``--lib kserve``: kserve's ``InferenceRESTClient`` with ``RESTConfig(protocol="v2")``
  (client ``kserve-rest``, mode ``json`` or ``binary``) and ``InferenceGRPCClient``
  (client ``kserve-grpc``, mode ``typed`` contents or ``raw``), with kserve's own
  ``InferRequest``/``InferInput`` types.

``--plan FILE`` is a JSON list of calls; the probe runs those whose client belongs to its
library, in order::

    {"case": "graph-kserve-rest-json", "client": "kserve-rest", "call": "infer",
     "url": "127.0.0.1:PORT", "model": "iris-graph", "mode": "json", "id": "req-1",
     "inputs": [<tensor>, ...]}
    {"case": "graph-kserve-rest-health", "client": "kserve-rest", "call": "health",
     "url": "127.0.0.1:PORT", "model": "iris-graph"}

It prints one JSON record per call on stdout, after a first ``{"case": "_versions", ...}``::

    {"case": ..., "client": ..., "error": null, "status": null,
     "response": {"model_name": ..., "id": ..., "binary": bool},
     "outputs": [<tensor>, ...], "health": {...}}

``error`` and ``status`` hold what the client raised (the gRPC status name, or the HTTP
status code); ``response.binary`` whether the tensors came back as raw or binary data.
A ``<tensor>`` is exact JSON for any V2 datatype (see :func:`encode_tensor`), so NaN,
negative zero, 64-bit integers and non-UTF-8 bytes survive the trip to the test.

The expected values live in the tests; this script only reports what the clients got.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import traceback
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

import numpy as np

WIRE_DTYPES: dict[str, str] = {
    "BOOL": "|b1",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
"""The little-endian numpy dtype of each fixed-size V2 datatype (BF16 needs ml_dtypes)."""


# ---------------------------------------------------------------- exact tensors in JSON


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_tensor(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    """A tensor as exact JSON: fixed-size data as base64 of its little-endian bytes; BYTES
    as base64 per element, with ``str: true`` if a client handed back text, not bytes."""
    array = np.asarray(array)
    out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == "BYTES":
        flat = array.reshape(-1).tolist()
        out["str"] = any(isinstance(v, str) for v in flat)
        out["elements"] = [_b64(v.encode("utf-8") if isinstance(v, str) else v) for v in flat]
    elif datatype == "BF16":
        out["raw"] = _b64(array.tobytes())
    else:
        out["raw"] = _b64(np.ascontiguousarray(array, dtype=WIRE_DTYPES[datatype]).tobytes())
    return out


def decode_tensor(tensor: dict[str, Any]) -> np.ndarray:
    """The numpy array of an :func:`encode_tensor` dict (BYTES: an object array of bytes)."""
    shape = tuple(tensor["shape"])
    datatype = tensor["datatype"]
    if datatype == "BYTES":
        array = np.empty(len(tensor["elements"]), dtype=object)
        array[:] = [base64.b64decode(e) for e in tensor["elements"]]
        return array.reshape(shape)
    if datatype == "BF16":
        import ml_dtypes

        dtype: Any = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(WIRE_DTYPES[datatype])
    return np.frombuffer(base64.b64decode(tensor["raw"]), dtype=dtype).reshape(shape).copy()


# ---------------------------------------------------------------- records


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


def _record(call: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": call["case"],
        "client": call["client"],
        "error": None,
        "status": None,
        "response": None,
        "outputs": None,
        "health": None,
    }


def _failed(record: dict[str, Any], exc: BaseException) -> None:
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    response = getattr(exc, "response", None)
    if callable(code):  # grpc.RpcError
        record["status"] = code().name
        record["error"] = exc.details()
    elif callable(status):  # tritonclient's InferenceServerException
        record["status"] = str(status()).removeprefix("StatusCode.")
        record["error"] = exc.message()
    elif response is not None and hasattr(response, "status_code"):  # httpx.HTTPStatusError
        record["status"] = response.status_code
        record["error"] = str(exc)
    else:
        record["error"] = "".join(traceback.format_exception_only(exc)).strip()


def _outputs(items: Iterable[tuple[str, str, np.ndarray]]) -> list[dict[str, Any]]:
    return [encode_tensor(name, datatype, array) for name, datatype, array in items]


# ---------------------------------------------------------------- tritonclient.grpc


def run_triton(calls: list[dict[str, Any]]) -> None:
    import tritonclient.grpc as tg

    _emit(
        {
            "case": "_versions",
            "tritonclient": version("tritonclient"),
            "grpcio": version("grpcio"),
            "protobuf": version("protobuf"),
            "numpy": version("numpy"),
            "python": sys.version.split()[0],
        }
    )
    clients: dict[str, Any] = {}
    for call in calls:
        record = _record(call)
        client = clients.get(call["url"])
        if client is None:
            client = clients[call["url"]] = tg.InferenceServerClient(call["url"])
        try:
            if call["call"] == "health":
                record["health"] = {
                    "live": client.is_server_live(),
                    "ready": client.is_server_ready(),
                    "model_ready": client.is_model_ready(call["model"]),
                    "server_metadata": client.get_server_metadata(as_json=True),
                    "model_metadata": client.get_model_metadata(call["model"], as_json=True),
                }
            else:
                inputs = []
                for tensor in call["inputs"]:
                    infer_input = tg.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
                    infer_input.set_data_from_numpy(decode_tensor(tensor))
                    inputs.append(infer_input)
                result = client.infer(call["model"], inputs, request_id=call.get("id", ""))
                response = result.get_response()
                record["response"] = {
                    "model_name": response.model_name,
                    "id": response.id,
                    "binary": len(response.raw_output_contents) > 0,
                }
                record["outputs"] = _outputs(
                    (o.name, o.datatype, result.as_numpy(o.name)) for o in response.outputs
                )
        except Exception as exc:
            _failed(record, exc)
        _emit(record)
    for client in clients.values():
        client.close()


# ---------------------------------------------------------------- kserve


def _kserve_inputs(call: dict[str, Any], binary: bool) -> list[Any]:
    from kserve import InferInput

    inputs = []
    for tensor in call["inputs"]:
        array = decode_tensor(tensor)
        if call["mode"] == "typed":  # kserve-grpc: typed contents from a plain list
            infer_input = InferInput(
                tensor["name"], tensor["shape"], tensor["datatype"], data=array.ravel().tolist()
            )
        else:
            infer_input = InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            infer_input.set_data_from_numpy(array, binary_data=binary)
        inputs.append(infer_input)
    return inputs


async def _kserve_call(call: dict[str, Any], rest: Any, grpc_clients: dict[str, Any]) -> Any:
    from kserve import InferenceGRPCClient, InferRequest

    record = _record(call)
    if call["client"] == "kserve-rest":
        base_url = f"http://{call['url']}"
        if call["call"] == "health":
            record["health"] = {
                "live": await rest.is_server_live(base_url),
                "ready": await rest.is_server_ready(base_url),
                "model_ready": await rest.is_model_ready(base_url, call["model"]),
            }
            return record
        binary = call["mode"] == "binary"
        request = InferRequest(
            call["model"],
            _kserve_inputs(call, binary),
            request_id=call.get("id"),
            parameters={"binary_data_output": True} if binary else None,
        )
        headers: dict[str, str] = {}
        result = await rest.infer(
            base_url, data=request, model_name=call["model"], response_headers=headers
        )
        framed = "inference-header-content-length" in {k.lower() for k in headers}
    else:
        client = grpc_clients.get(call["url"])
        if client is None:
            client = grpc_clients[call["url"]] = InferenceGRPCClient(
                call["url"], retries=0, timeout=30
            )
        if call["call"] == "health":
            record["health"] = {
                "live": await client.is_server_live(),
                "ready": await client.is_server_ready(),
                "model_ready": await client.is_model_ready(call["model"]),
            }
            return record
        request = InferRequest(
            call["model"], _kserve_inputs(call, binary=True), request_id=call.get("id")
        )
        result = await client.infer(request)
        # InferResponse.from_grpc keeps raw_output_contents as each output's _raw_data
        framed = any(getattr(o, "_raw_data", None) is not None for o in result.outputs)
    record["response"] = {"model_name": result.model_name, "id": result.id, "binary": framed}
    record["outputs"] = _outputs((o.name, o.datatype, o.as_numpy()) for o in result.outputs)
    return record


async def _run_kserve(calls: list[dict[str, Any]]) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    _emit(
        {
            "case": "_versions",
            "kserve": version("kserve"),
            "httpx": version("httpx"),
            "grpcio": version("grpcio"),
            "protobuf": version("protobuf"),
            "numpy": version("numpy"),
            "python": sys.version.split()[0],
        }
    )
    rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    grpc_clients: dict[str, Any] = {}
    try:
        for call in calls:
            try:
                record = await _kserve_call(call, rest, grpc_clients)
            except Exception as exc:
                record = _record(call)
                _failed(record, exc)
            _emit(record)
    finally:
        await rest.close()
        for client in grpc_clients.values():
            await client.close()


def run_kserve(calls: list[dict[str, Any]]) -> None:
    asyncio.run(_run_kserve(calls))


LIBRARIES: dict[str, tuple[tuple[str, ...], Callable[[list[dict[str, Any]]], None]]] = {
    "triton": (("triton-grpc",), run_triton),
    "kserve": (("kserve-rest", "kserve-grpc"), run_kserve),
}
"""``--lib`` -> (the clients it runs, its runner)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", choices=sorted(LIBRARIES), required=True)
    parser.add_argument("--plan", required=True, help="JSON file: a list of calls")
    args = parser.parse_args(argv)
    with open(args.plan) as fh:
        plan = json.load(fh)
    clients, runner = LIBRARIES[args.lib]
    runner([call for call in plan if call["client"] in clients])
    return 0


if __name__ == "__main__":
    sys.exit(main())
