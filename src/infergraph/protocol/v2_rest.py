"""Open Inference Protocol (V2) REST bodies <-> :mod:`~infergraph.protocol.v2_types`.

A V2 server decodes requests and encodes responses; the orchestrator encodes requests to
remote V2 nodes and decodes their responses. Both directions share one set of tensor
helpers, so what infergraph writes is exactly what it accepts.

A body is a JSON object (tensor ``data`` handled by :mod:`~infergraph.protocol.v2_json_data`),
optionally followed by binary tensor data (the binary tensor data extension,
:mod:`~infergraph.protocol.v2_binary`); the ``Inference-Header-Content-Length``
HTTP header gives the JSON's length and is passed in as ``header_length`` (None when
absent, 0 for Triton's raw binary request). Choices the spec leaves open:

- JSON ``data`` may be nested or flat; only its element count must match ``shape``.
- JSON elements must be of the datatype's kind (``true``/``false`` for BOOL, integers in
  range for the integer types, strings for BYTES); nothing is silently coerced.
- JSON has no half-precision type: FP16 tensors not sent as binary are written as JSON
  numbers (each value's shortest float32 form, which reads back to the same FP16 value).
- JSON has no NaN or Infinity: non-finite floats are written as ``null``, and ``null``
  reads back as NaN. Send binary data to keep infinities.
- ``parameters.binary_data_size`` is wire framing: decoded tensors never carry it, and the
  encoders add it themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from infergraph.errors import BadRequest, InferGraphError
from infergraph.protocol.v2_binary import (
    INFERENCE_HEADER_CONTENT_LENGTH,
    element_count,
    raw_input_tensor,
    read_binary_tensor,
    tensor_to_bytes,
)
from infergraph.protocol.v2_json_data import array_from_json, brief, json_data, json_kind
from infergraph.protocol.v2_types import (
    DATATYPES,
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)

__all__ = [
    "INFERENCE_HEADER_CONTENT_LENGTH",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_body",
    "parse_header_length",
]


# ---------------------------------------------------------------- framing


def parse_header_length(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as an int (None when absent)."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(
            f"{INFERENCE_HEADER_CONTENT_LENGTH}: {value!r} is not a non-negative integer"
        )
    return int(text)


def error_body(message: str) -> bytes:
    """V2's error JSON, ``{"error": message}``, for any endpoint."""
    return orjson.dumps({"error": message})


def decode_error(body: bytes) -> str:
    """The message of V2's error JSON; BadRequest when the body is not one."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the error answer is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), str):
        raise BadRequest('the error answer is not {"error": "..."}')
    return str(obj["error"])


def _split(body: bytes, header_length: int | None) -> tuple[bytes | memoryview, memoryview | None]:
    if header_length is None:
        return body, None
    if header_length < 0 or header_length > len(body):
        raise BadRequest(
            f"{INFERENCE_HEADER_CONTENT_LENGTH}: {header_length} does not fit the "
            f"{len(body)}-byte body; it must give the length of the JSON header"
        )
    view = memoryview(body)
    return view[:header_length], view[header_length:]


def _assemble(obj: dict[str, Any], chunks: list[bytes], binary: bool) -> tuple[bytes, int | None]:
    header = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binary:
        return header, None
    return b"".join([header, *chunks]), len(header)


# ---------------------------------------------------------------- JSON fields


def _load_object(header: bytes | memoryview, what: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        hint = ""
        if any(word in bytes(header) for word in (b"NaN", b"Infinity")):
            hint = " (JSON has no NaN or Infinity: send the tensor as binary data, or null for NaN)"
        raise BadRequest(f"The inference {what} is not valid JSON: {exc}{hint}") from exc
    if not isinstance(obj, dict):
        raise BadRequest(f"The inference {what} must be a JSON object, got {json_kind(obj)}")
    return obj


def _string(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{where}{key} must be a string, got {json_kind(value)}")
    return value


def _name(obj: dict[str, Any], where: str, seen: set[str], duplicate: str) -> str:
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty string, got {brief(name)}")
    if name in seen:
        raise BadRequest(f"{where}.name: '{name}' {duplicate}")
    seen.add(name)
    return name


def _parameters(obj: dict[str, Any], where: str) -> dict[str, Any]:
    value = obj.get("parameters")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}parameters must be an object, got {json_kind(value)}")
    return dict(value)


def _check_bool(parameters: dict[str, Any], key: str, where: str) -> None:
    if key in parameters and not isinstance(parameters[key], bool):
        raise BadRequest(f"{where}parameters.{key} must be true or false")


# ---------------------------------------------------------------- decoding


def decode_request(
    body: bytes,
    header_length: int | None = None,
    raw_input: tuple[str, str, Sequence[int]] | None = None,
) -> InferenceRequest:
    """Decode an inference request body.

    ``raw_input`` (the model's one input as name, datatype, shape) is needed only for a
    raw binary request, ``header_length == 0``; such a request asks for binary outputs, so
    its ``parameters`` say ``binary_data_output``.
    """
    if header_length == 0:
        if raw_input is None:
            raise BadRequest(
                f"{INFERENCE_HEADER_CONTENT_LENGTH}: 0 marks a raw binary request, whose "
                "whole body is the tensor of the model's single input; this model has no "
                "single known input, so send a JSON inference header"
            )
        tensor = raw_input_tensor(body, raw_input)
        return InferenceRequest(inputs=[tensor], parameters={"binary_data_output": True})
    header, binary = _split(body, header_length)
    obj = _load_object(header, "request")
    if "inputs" not in obj:
        raise BadRequest("inputs is missing: an inference request needs a list of input tensors")
    parameters = _parameters(obj, "")
    _check_bool(parameters, "binary_data_output", "")
    return InferenceRequest(
        inputs=_decode_tensors(obj["inputs"], "inputs", binary),
        id=_string(obj, "id", ""),
        parameters=parameters,
        outputs=_requested_outputs(obj.get("outputs")),
    )


def decode_response(body: bytes, header_length: int | None = None) -> InferenceResponse:
    """Decode an inference response body from a remote V2 server."""
    header, binary = _split(body, header_length)
    obj = _load_object(header, "response")
    if "outputs" not in obj:
        error = f" (it reports an error: {brief(obj['error'])})" if "error" in obj else ""
        raise BadRequest(f"outputs is missing from the inference response{error}")
    return InferenceResponse(
        model_name=_string(obj, "model_name", "") or "",
        outputs=_decode_tensors(obj["outputs"], "outputs", binary),
        model_version=_string(obj, "model_version", ""),
        id=_string(obj, "id", ""),
        parameters=_parameters(obj, ""),
    )


def _requested_outputs(value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"outputs must be a list of requested outputs, got {json_kind(value)}")
    requested: list[RequestedOutput] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"outputs[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with a name, got {json_kind(item)}")
        name = _name(item, where, seen, "is requested twice")
        parameters = _parameters(item, f"{where}.")
        _check_bool(parameters, "binary_data", f"{where}.")
        requested.append(RequestedOutput(name, parameters))
    return requested


def _decode_tensors(items: Any, field: str, binary: memoryview | None) -> list[Tensor]:
    if not isinstance(items, list):
        raise BadRequest(f"{field} must be a list of tensors, got {json_kind(items)}")
    tensors: list[Tensor] = []
    seen: set[str] = set()
    offset = 0
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with name, shape, datatype and data")
        name = _name(item, where, seen, "appears twice")
        datatype = _datatype(item.get("datatype"), where)
        shape = _shape(item.get("shape"), where)
        parameters = _parameters(item, f"{where}.")
        size = parameters.pop("binary_data_size", None)
        if size is None:
            if "data" not in item:
                raise BadRequest(f"{where} has neither data nor parameters.binary_data_size")
            array = array_from_json(item["data"], datatype, shape, where)
        else:
            if "data" in item:
                raise BadRequest(f"{where} has both data and parameters.binary_data_size")
            if type(size) is not int or size < 0:
                raise BadRequest(
                    f"{where}.parameters.binary_data_size must be a non-negative integer, "
                    f"got {brief(size)}"
                )
            array = read_binary_tensor(binary, offset, size, datatype, shape, where)
            offset += size
        tensors.append(Tensor(name, datatype, shape, array, parameters))
    if binary is not None and offset != len(binary):
        raise BadRequest(
            f"{len(binary) - offset} bytes of binary data after the JSON header are not "
            f"claimed by any {field}[].parameters.binary_data_size"
        )
    return tensors


def _datatype(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(
            f'{where}.datatype must be a string such as "FP32", got {json_kind(value)}'
        )
    if value not in DATATYPES:
        what = "is not supported by infergraph" if value == "BF16" else "is not a V2 datatype"
        raise BadRequest(f"{where}.datatype: '{value}' {what} (use one of {', '.join(DATATYPES)})")
    return value


def _shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(type(dim) is int and dim >= 0 for dim in value):
        raise BadRequest(
            f"{where}.shape must be a list of non-negative integers, got {brief(value)}"
        )
    return value


# ---------------------------------------------------------------- encoding


def encode_response(
    response: InferenceResponse, request: InferenceRequest | None = None
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it.

    Honours the request's ``outputs`` (only those, in that order) and its binary choices:
    an output's ``parameters.binary_data`` wins over the request's ``binary_data_output``.
    """
    obj: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        obj["model_version"] = response.model_version
    request_id = response.id
    if request_id is None and request is not None:
        request_id = request.id
    if request_id is not None:
        obj["id"] = request_id
    if response.parameters:
        obj["parameters"] = response.parameters
    default = request is not None and request.parameters.get("binary_data_output") is True
    hint = "request it as binary data (outputs[].parameters.binary_data: true)"
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    any_binary = False
    for index, (tensor, requested) in enumerate(_selected(response.outputs, request)):
        choice = requested.parameters.get("binary_data") if requested else None
        binary = choice if isinstance(choice, bool) else default
        any_binary = any_binary or binary
        outputs.append(_encode_tensor(tensor, binary, f"outputs[{index}]", hint, chunks))
    obj["outputs"] = outputs
    return _assemble(obj, chunks, any_binary)


def encode_request(request: InferenceRequest, *, binary: bool = False) -> tuple[bytes, int | None]:
    """A request body for a remote V2 server, and the JSON header's length if binary.

    ``binary`` sends every input as binary data and asks for binary outputs
    (``binary_data_output``, unless the request's own parameters say otherwise).
    """
    obj: dict[str, Any] = {}
    if request.id is not None:
        obj["id"] = request.id
    parameters = dict(request.parameters)
    if binary:
        parameters.setdefault("binary_data_output", True)
    if parameters:
        obj["parameters"] = parameters
    chunks: list[bytes] = []
    hint = "encode the request with binary=True"
    obj["inputs"] = [
        _encode_tensor(tensor, binary, f"inputs[{index}]", hint, chunks)
        for index, tensor in enumerate(request.inputs)
    ]
    if request.outputs:
        obj["outputs"] = [
            {"name": out.name, "parameters": out.parameters}
            if out.parameters
            else {"name": out.name}
            for out in request.outputs
        ]
    return _assemble(obj, chunks, binary and bool(request.inputs))


def _selected(
    tensors: list[Tensor], request: InferenceRequest | None
) -> list[tuple[Tensor, RequestedOutput | None]]:
    if request is None or not request.outputs:
        return [(tensor, None) for tensor in tensors]
    by_name = {tensor.name: tensor for tensor in tensors}
    selected: list[tuple[Tensor, RequestedOutput | None]] = []
    for index, requested in enumerate(request.outputs):
        tensor = by_name.get(requested.name)
        if tensor is None:
            names = ", ".join(f"'{name}'" for name in by_name) or "none"
            raise BadRequest(
                f"outputs[{index}].name: '{requested.name}' is not an output of the model "
                f"(its outputs: {names})"
            )
        selected.append((tensor, requested))
    return selected


def _encode_tensor(
    tensor: Tensor, binary: bool, where: str, hint: str, chunks: list[bytes]
) -> dict[str, Any]:
    """One tensor's JSON, appending its bytes to ``chunks`` when ``binary``.

    A tensor that contradicts its own datatype or shape is infergraph's or a model's fault,
    not the client's, so it raises :class:`InferGraphError` (500) rather than BadRequest.
    """
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise InferGraphError(f"{where}.datatype: '{tensor.datatype}' is not a V2 datatype")
    array = (
        np.asarray(tensor.data) if tensor.datatype == "BYTES" else np.asarray(tensor.data, dtype)
    )
    shape = [int(dim) for dim in tensor.shape]
    if array.size != element_count(shape):
        raise InferGraphError(
            f"{where} ('{tensor.name}'): shape {shape} needs {element_count(shape)} values, "
            f"the tensor holds {array.size}"
        )
    obj: dict[str, Any] = {"name": tensor.name, "shape": shape, "datatype": tensor.datatype}
    parameters = {k: v for k, v in tensor.parameters.items() if k != "binary_data_size"}
    if binary:
        chunk = tensor_to_bytes(array, tensor.datatype)
        chunks.append(chunk)
        obj["parameters"] = {**parameters, "binary_data_size": len(chunk)}
        return obj
    if parameters:
        obj["parameters"] = parameters
    obj["data"] = json_data(array, tensor.datatype, f"{where} ('{tensor.name}')", hint)
    return obj
