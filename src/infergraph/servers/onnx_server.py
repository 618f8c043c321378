"""``ONNX_SERVER``: an ONNX model run by ONNX Runtime on the CPU.

ONNX is the one format here that describes its own tensors, so the default metadata lists
the model's real inputs and outputs in Open Inference Protocol form, and the request is
cast to the dtype the model declares (JSON numbers arrive as float64; most models take
float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infergraph.errors import BadRequest, LoadError
from infergraph.servers.base import ModelServer, require
from infergraph.settings import ComponentSettings

__all__ = ["ONNXServer"]

# ONNX Runtime type string -> (numpy dtype, Open Inference Protocol datatype)
_TYPES: dict[str, tuple[Any, str]] = {
    "tensor(float)": (np.float32, "FP32"),
    "tensor(double)": (np.float64, "FP64"),
    "tensor(float16)": (np.float16, "FP16"),
    "tensor(int8)": (np.int8, "INT8"),
    "tensor(int16)": (np.int16, "INT16"),
    "tensor(int32)": (np.int32, "INT32"),
    "tensor(int64)": (np.int64, "INT64"),
    "tensor(uint8)": (np.uint8, "UINT8"),
    "tensor(uint16)": (np.uint16, "UINT16"),
    "tensor(uint32)": (np.uint32, "UINT32"),
    "tensor(uint64)": (np.uint64, "UINT64"),
    "tensor(bool)": (np.bool_, "BOOL"),
    "tensor(string)": (np.object_, "BYTES"),
}


class ONNXServer(ModelServer):
    """``ONNXServer(model_uri, output="")``: ``model.onnx`` (or the folder's only ``.onnx``
    file). A request feeds the model's single input; with several inputs, send jsonData
    ``{input name: array}``. The answer is the first output, or the one ``output`` names."""

    implementation = "ONNX_SERVER"
    platform = "onnx"
    model_files = ("model.onnx",)

    def __init__(
        self, model_uri: str, output: str = "", settings: ComponentSettings | None = None
    ) -> None:
        super().__init__(model_uri, settings)
        self.output = output
        self._session: Any = None
        self._first_output = ""
        self._inputs: dict[str, Any] = {}

    def load(self) -> None:
        if self._session is not None:
            return  # init_metadata may have opened it already
        ort = require("onnxruntime", "onnx", self.implementation)
        path = self._onnx_file()
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise LoadError(
                f"ONNX_SERVER cannot load {path.name}: {type(exc).__name__}: {exc}"
            ) from exc
        outputs = [o.name for o in session.get_outputs()]
        if self.output and self.output not in outputs:
            raise LoadError(
                f"ONNX_SERVER: the parameter output={self.output!r} names no output of "
                f"{path.name}; its outputs are {', '.join(outputs)}"
            )
        self._first_output = outputs[0]
        self._inputs = {i.name: _TYPES.get(i.type, (None, ""))[0] for i in session.get_inputs()}
        self._session = session

    @property
    def v2_output_name(self) -> str:
        """The output returned, by name. Without ``output`` only the model knows, so asking
        opens it (as ``init_metadata``, called just as early, does anyway)."""
        if not self.output and self._session is None:
            self.load()
        return self.output or self._first_output

    def _onnx_file(self) -> Path:
        path = self.model_path()
        if path.is_dir() and not (path / "model.onnx").is_file():
            found = sorted(path.glob("*.onnx"))
            if len(found) == 1:
                return found[0]
        return self.find_model_file()

    def predict(self, X: Any, feature_names: Any = None, meta: Any = None) -> Any:
        if self._session is None:
            self.load()
        if isinstance(X, dict):
            unknown = sorted(set(X) - set(self._inputs))
            if unknown:
                raise BadRequest(
                    f"ONNX_SERVER: {', '.join(unknown)} are not inputs of the model; its "
                    f"inputs are {', '.join(self._inputs)}"
                )
            feed = {name: _cast(value, self._inputs[name]) for name, value in X.items()}
        elif len(self._inputs) == 1:
            name, dtype = next(iter(self._inputs.items()))
            feed = {name: _cast(X, dtype)}
        else:
            raise BadRequest(
                f"ONNX_SERVER: the model has {len(self._inputs)} inputs "
                f"({', '.join(self._inputs)}); send jsonData mapping each name to its array"
            )
        return self._session.run([self.output or self._first_output], feed)[0]

    def default_metadata(self) -> dict[str, Any]:
        self.load()

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [
                {
                    "name": item.name,
                    "datatype": _TYPES.get(item.type, (None, "BYTES"))[1],
                    "shape": [d if isinstance(d, int) else -1 for d in item.shape],
                }
                for item in items
            ]

        session = self._session
        return {
            "platform": self.platform,
            "inputs": tensors(session.get_inputs()),
            "outputs": tensors(session.get_outputs()),
        }


def _cast(value: Any, dtype: Any) -> Any:
    array = np.asarray(value)
    return array if dtype is None or array.dtype == dtype else array.astype(dtype)
