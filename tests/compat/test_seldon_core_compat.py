"""Seldon model files that ``import seldon_core`` run under infergraph without seldon-core.

The classes in ``tests/seldon_models`` are written as Seldon's users write them. This venv
has no seldon-core (its pins clash with infergraph's), so ``seldon_core`` resolves to
``infergraph.compat.seldon_core`` through the finder the loader installs:

- served alone by ``infergraph microservice``, over REST and gRPC on real sockets;
- as nodes of a graph served by ``infergraph serve``;
- the finder is not installed by ``import infergraph``, and a real ``seldon_core`` on the
  path wins over it (a fake one stands in, in a subprocess);
- the ``seldon_core.utils`` helpers give Seldon's values: the expected values below are
  what Seldon's own functions return for the same input, except for the differences
  ``docs/interop.md`` lists (a list, not a tuple, for ``tensor.shape``).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.machinery
import json
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2, json_format, wrappers_pb2

from infergraph.compat.seldon_core import metrics as sc_metrics
from infergraph.compat.seldon_core import user_model, utils
from infergraph.errors import MicroserviceError
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.cli.test_cli_serve import serving as serving_graph
from tests.helpers.procs import PYTHON, Service, clean_env, metric_sum, serving

MODELS = Path(__file__).parents[1] / "seldon_models"
ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def no_seldon_core() -> None:
    """The serving and finder tests are about the stand-in: beside a real seldon-core
    (which cannot work with this stack anyway) they would test something else."""
    if importlib.machinery.PathFinder.find_spec("seldon_core") is not None:
        pytest.skip("seldon-core is installed in this environment")


def run_python(script: str, folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script)],
        cwd=folder,
        env=clean_env({**ENV, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def grpc_predict(port: int, request: Any) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return pb_grpc.ModelStub(channel).Predict(request, timeout=10)


def tensor_request(rows: list[list[float]], puid: str = "") -> Any:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([len(rows), len(rows[0])])
    request.data.tensor.values.extend(v for row in rows for v in row)
    if puid:
        request.meta.puid = puid
    return request


# ---------------------------------------------------------------- (a) infergraph microservice


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, no_seldon_core: None
) -> Iterator[Callable[[str], Service]]:
    """``served(name)``: the model file ``name`` under ``infergraph microservice``, started
    on first use and killed when the module's tests are done."""
    weights = tmp_path_factory.mktemp("weights")
    (weights / "weights.json").write_text(json.dumps({"w": 3.0, "b": 0.5}))
    parameters = {
        "SeldonStorageModel": [{"name": "model_uri", "value": str(weights), "type": "STRING"}]
    }
    extra_env = {"SeldonUtilsModel": {"UTILS_MODEL_NEGATE": "true"}}
    services: dict[str, Service] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> Service:
            if name not in services:
                args = [name, "--path", str(MODELS)]
                if name in parameters:
                    args += ["--parameters", json.dumps(parameters[name])]
                env = {**ENV, **extra_env.get(name, {})}
                folder = tmp_path_factory.mktemp(name)
                services[name] = stack.enter_context(serving(folder, args, env=env))
            return services[name]

        yield get


@pytest.mark.slow
def test_a_seldon_component_with_runtime_tags_and_metrics(served: Callable[[str], Service]) -> None:
    service = served("SeldonModel")
    body = service.predict({"data": {"ndarray": [[1, 2], [3, 4]]}})
    assert body["data"] == {"names": ["a", "b"], "ndarray": [[2.0, 4.0], [6.0, 8.0]]}
    assert body["meta"]["tags"] == {"model": "seldon"}
    assert body["meta"]["metrics"] == [{"type": "COUNTER", "key": "seldon_model_rows", "value": 2}]

    reply = grpc_predict(service.grpc, tensor_request([[1.0, 2.5]]))
    assert list(reply.data.names) == ["a", "b"]
    assert list(reply.data.tensor.values) == [2.0, 5.0]
    assert json_format.MessageToDict(reply.meta)["tags"] == {"model": "seldon"}

    samples = service.scrape()
    assert metric_sum(samples, "seldon_model_rows_total", method="predict") == 3


@pytest.mark.slow
def test_predict_raw_with_prediction_pb2_over_grpc_and_rest(
    served: Callable[[str], Service],
) -> None:
    service = served("SeldonGrpcModel")
    reply = grpc_predict(service.grpc, tensor_request([[1.0, 2.0]], puid="p-1"))
    assert isinstance(reply, pb.SeldonMessage)
    assert list(reply.data.names) == ["p", "q"]
    assert list(reply.data.tensor.shape) == [1, 2]
    assert list(reply.data.tensor.values) == [3.0, 6.0]
    assert reply.meta.puid == "p-1"
    assert reply.meta.tags["via"].string_value == "proto"

    body = service.predict({"data": {"ndarray": [[2, 5]]}})
    assert body["data"] == {"names": ["p", "q"], "tensor": {"shape": [1, 2], "values": [6, 15]}}
    assert body["meta"] == {"tags": {"via": "proto"}}


@pytest.mark.slow
def test_seldon_microservice_exception_sets_status_and_reason(
    served: Callable[[str], Service],
) -> None:
    service = served("SeldonFailing")
    assert service.predict({"data": {"ndarray": [[1, 2]]}})["data"]["ndarray"] == [[1, 2]]

    status, _, data = service.post("/api/v1.0/predictions", {"data": {"ndarray": [[500]]}})
    assert status == 422
    assert json.loads(data) == {
        "status": {"status": 1, "info": "input above limit 100.0", "code": -1,
                   "reason": "MODEL_REFUSED"}
    }  # fmt: skip

    with pytest.raises(grpc.RpcError) as caught:
        grpc_predict(service.grpc, tensor_request([[500.0]]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input above limit" in (caught.value.details() or "")


@pytest.mark.slow
def test_storage_download_in_load(served: Callable[[str], Service]) -> None:
    body = served("SeldonStorageModel").predict({"data": {"ndarray": [[1.0, 2.0]]}})
    assert body["data"]["ndarray"] == [[3.5, 6.5]]  # weights.json: w 3, b 0.5


@pytest.mark.slow
def test_utils_helpers_and_metric_constants(served: Callable[[str], Service]) -> None:
    service = served("SeldonUtilsModel")  # UTILS_MODEL_NEGATE=true: getenv_as_bool
    body = service.predict({"data": {"ndarray": [[1, 2]]}, "meta": {"puid": "u-1"}})
    assert body["data"] == {"names": ["t:0", "t:1"], "ndarray": [[-101.0, -102.0]]}
    assert body["meta"]["puid"] == "u-1"
    assert body["meta"]["tags"] == {"static": "yes", "helpers": "utils"}
    assert [m["type"] for m in body["meta"]["metrics"]] == ["COUNTER", "GAUGE", "TIMER"]

    reply = grpc_predict(service.grpc, tensor_request([[1.0, 2.0, 3.0]]))
    assert list(reply.data.tensor.values) == [-101.0, -102.0, -103.0]  # tensor in, tensor out
    assert list(reply.data.names) == ["t:0", "t:1", "t:2"]

    samples = service.scrape()
    assert metric_sum(samples, "utils_model_requests_total", method="predict") == 2
    assert metric_sum(samples, "utils_model_width", method="predict") == 3
    assert metric_sum(samples, "utils_model_time_count", method="predict") == 2
    assert metric_sum(samples, "utils_model_time_sum", method="predict") == pytest.approx(0.005)


# ---------------------------------------------------------------- (b) infergraph serve


def _graph_node(name: str, kind: str, *children: dict[str, Any], **params: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "type": kind, "children": list(children)}
    if params:
        node["parameters"] = [
            {"name": k, "value": str(v), "type": "INT" if isinstance(v, int) else "FLOAT"}
            for k, v in params.items()
        ]
    return node


def seldon_graph() -> dict[str, Any]:
    """t (transform +1) -> r (route to child 1) -> c (average of m: x10 and g: x3)."""
    graph = _graph_node(
        "t", "TRANSFORMER",
        _graph_node(
            "r", "ROUTER",
            _graph_node("a", "MODEL", factor=2.0),
            _graph_node("c", "COMBINER",
                        _graph_node("m", "MODEL", factor=10.0), _graph_node("g", "MODEL")),
            choice=1,
        ),
    )  # fmt: skip
    classes = {
        "t": "SeldonTransformer",
        "r": "SeldonRouter",
        "a": "SeldonModel",
        "c": "SeldonCombiner",
        "m": "SeldonModel",
        "g": "SeldonGrpcModel",
    }
    containers = [
        {
            "name": name,
            "image": f"example/{cls.lower()}:1.0",
            "env": [{"name": "MODEL_NAME", "value": cls}],
        }
        for name, cls in classes.items()
    ]
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "seldon-compat"},
        "spec": {
            "predictors": [
                {"name": "default", "graph": graph,
                 "componentSpecs": [{"spec": {"containers": containers}}]}
            ]
        },
    }  # fmt: skip


@pytest.mark.slow
def test_seldon_model_files_as_graph_nodes(tmp_path: Path, no_seldon_core: None) -> None:
    manifest = tmp_path / "graph.json"  # JSON is YAML
    manifest.write_text(json.dumps(seldon_graph()))
    with serving_graph(tmp_path, manifest, "--path", str(MODELS), env=ENV) as server:
        status, body = server.post("/api/v1.0/predictions", {"data": {"ndarray": [[1, 2]]}})
        assert status == 200, body
        # t: [[2, 3]]; r -> c; m: [[20, 30]], g: [[6, 9]]; c: the average
        assert body["data"]["ndarray"] == [[13.0, 19.5]]
        assert body["meta"]["routing"]["r"] == 1
        tags = body["meta"]["tags"]
        assert {"model": "seldon", "transformer": "seen", "via": "proto"}.items() <= tags.items()

        feedback = {"request": {"data": {"ndarray": [[1, 2]]}}, "response": body, "reward": 1.0}
        status, answer = server.post("/api/v1.0/feedback", feedback)
        assert status == 200, answer

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
            reply = pb_grpc.SeldonStub(channel).Predict(tensor_request([[1.0, 2.0]]), timeout=10)
        assert list(reply.data.tensor.values) == [13.0, 19.5]
        assert "Traceback" not in server.stderr()


# ---------------------------------------------------------------- (c) the finder


@pytest.mark.slow
def test_import_infergraph_installs_no_finder(tmp_path: Path, no_seldon_core: None) -> None:
    result = run_python(
        """
        import json, sys
        import infergraph, infergraph.sdk, infergraph.testing
        import infergraph.cli.main, infergraph.components.loader, infergraph.serving.server
        names = [type(f).__name__ for f in sys.meta_path]
        try:
            import seldon_core
        except ModuleNotFoundError as exc:
            outcome = f"ModuleNotFoundError: {exc.name}"
        else:
            outcome = seldon_core.__name__
        loaded = sorted(m for m in sys.modules if "seldon_core" in m)
        print(json.dumps({"finders": names, "import": outcome, "loaded": loaded}))
        """,
        tmp_path,
    )
    assert "SeldonCoreAlias" not in result["finders"]
    assert result["import"] == "ModuleNotFoundError: seldon_core"
    assert result["loaded"] == []


@pytest.mark.slow
def test_loader_aliases_seldon_core_to_the_stand_in(tmp_path: Path, no_seldon_core: None) -> None:
    (tmp_path / "UsesMicroservice.py").write_text("from seldon_core.microservice import main\n")
    result = run_python(
        f"""
        import json, sys
        from importlib.machinery import PathFinder
        from infergraph.components.loader import import_component
        from infergraph.errors import LoadError

        cls = import_component("SeldonModel", {str(MODELS)!r})
        import_component("SeldonUtilsModel", {str(MODELS)!r})
        import seldon_core, seldon_core.user_model, infergraph.compat.seldon_core.user_model as um
        from seldon_core import Storage
        from seldon_core.proto import prediction_pb2
        import infergraph.protocol.proto.prediction_pb2 as ours
        import infergraph.sdk
        kinds = [type(f).__name__ for f in sys.meta_path]
        try:
            import_component("UsesMicroservice")
        except LoadError as exc:
            missing = str(exc)
        print(json.dumps({{
            "finders": kinds,
            "after_path_finder": kinds.index("SeldonCoreAlias") > sys.meta_path.index(PathFinder),
            "same_user_model": sys.modules["seldon_core.user_model"] is um,
            "user_model_spec": um.__spec__.name,
            "same_pb2": prediction_pb2 is ours,
            "pb2_registered": sys.modules["seldon_core.proto.prediction_pb2"] is ours,
            "pb2_spec": ours.__spec__.name,
            "storage": f"{{Storage.__module__}}.{{Storage.__qualname__}}",
            "is_sdk_component": issubclass(cls, infergraph.sdk.SeldonComponent),
            "package_path": list(seldon_core.__path__),
            "missing": missing,
        }}))
        """,
        tmp_path,
    )
    assert result["finders"].count("SeldonCoreAlias") == 1  # two loads, one finder
    assert result["after_path_finder"]
    assert result["same_user_model"]
    assert result["user_model_spec"] == "infergraph.compat.seldon_core.user_model"
    assert result["same_pb2"]
    assert result["pb2_registered"]
    assert result["pb2_spec"] == "infergraph.protocol.proto.prediction_pb2"
    assert result["storage"] == "infergraph.compat.seldon_core.storage.Storage"
    assert result["is_sdk_component"]
    assert result["package_path"] == []  # submodules always come back through the finder
    assert "seldon_core.microservice" in result["missing"]
    assert "docs/interop.md" in result["missing"]


@pytest.mark.slow
def test_a_real_seldon_core_on_the_path_wins(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "seldon_core"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\n")
    (fake / "user_model.py").write_text("class SeldonComponent:\n    real = True\n")
    (tmp_path / "FakeUser.py").write_text(
        "from seldon_core.user_model import SeldonComponent\n\n\n"
        "class FakeUser(SeldonComponent):\n"
        "    def predict(self, X, names):\n"
        "        return X\n"
    )
    result = run_python(
        """
        import json, sys
        from infergraph.components import seldon_alias
        from infergraph.components.loader import import_component

        cls = import_component("FakeUser")
        import seldon_core
        try:
            import seldon_core.proto  # the fake has none; the stand-in must not fill in
        except ModuleNotFoundError as exc:
            proto = f"ModuleNotFoundError: {exc.name}"
        else:
            proto = seldon_core.proto.__name__
        print(json.dumps({
            "installed": seldon_alias.is_installed(),
            "file": seldon_core.__file__,
            "real": getattr(seldon_core, "REAL", False),
            "base_is_fake": cls.__mro__[1].__module__ == "seldon_core.user_model"
            and getattr(cls, "real", False),
            "proto": proto,
            "compat_loaded": any(m.startswith("infergraph.compat") for m in sys.modules),
        }))
        """,
        tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site")},
    )
    assert result["installed"]
    assert result["file"] == str(fake / "__init__.py")
    assert result["real"]
    assert result["base_is_fake"]
    assert result["proto"] == "ModuleNotFoundError: seldon_core.proto"
    assert not result["compat_loaded"]


# ---------------------------------------------------------------- (d) seldon_core.utils


class Classes(user_model.SeldonComponent):
    """A model with class names and static tags, for the response builders."""

    def class_names(self) -> list[str]:
        return ["x", "y"]

    def tags(self) -> dict[str, Any]:
        return {"static": 1}


@pytest.mark.parametrize(
    ("message", "proto_json", "payload"),
    [
        pytest.param(
            {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}, "meta": {"puid": "p"}},
            {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}, "meta": {"puid": "p"}},
            np.array([[1.0, 2.0]]),
            id="ndarray",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [2, 1], "values": [1, 2]}}},
            {"data": {"tensor": {"shape": [2, 1], "values": [1.0, 2.0]}}},
            np.array([[1.0], [2.0]]),
            id="tensor",
        ),
        pytest.param({"strData": "hi"}, {"strData": "hi"}, "hi", id="strData"),
        pytest.param({"binData": "AAE="}, {"binData": "AAE="}, b"\x00\x01", id="binData"),
        pytest.param(
            {"jsonData": {"k": [1, "v"]}},
            {"jsonData": {"k": [1.0, "v"]}},
            {"k": [1.0, "v"]},
            id="jsonData",
        ),
    ],
)
def test_json_proto_round_trip(message: Any, proto_json: Any, payload: Any) -> None:
    proto = utils.json_to_seldon_message(message)
    assert isinstance(proto, pb.SeldonMessage)
    assert utils.seldon_message_to_json(proto) == proto_json  # protobuf's JSON: floats
    assert utils.seldon_message_to_json(utils.json_to_seldon_message(proto_json)) == proto_json
    data = utils.get_data_from_proto(proto)
    if isinstance(payload, np.ndarray):
        assert data.dtype == np.float64
        np.testing.assert_array_equal(data, payload)
    else:
        assert data == payload
    features, meta, datadef, data_type = utils.extract_request_parts(proto)
    assert data_type == next(iter(k for k in message if k != "meta"))
    assert datadef == proto.data
    if isinstance(payload, np.ndarray):
        np.testing.assert_array_equal(features, payload)
    assert meta == proto_json.get("meta", {})


def test_bad_json_and_empty_messages_raise_seldons_exception() -> None:
    with pytest.raises(MicroserviceError, match="Invalid JSON"):
        utils.json_to_seldon_message({"notAField": 1})
    with pytest.raises(MicroserviceError, match="Unknown data in SeldonMessage"):
        utils.get_data_from_proto(pb.SeldonMessage())
    with pytest.raises(MicroserviceError, match="Invalid request data type"):
        utils.extract_request_parts_json([1, 2])
    with pytest.raises(MicroserviceError, match="Invalid request data type"):
        utils.extract_request_parts_json({"meta": {}})
    assert utils.json_to_seldon_message(None) == pb.SeldonMessage()


@pytest.mark.parametrize("data_type", ["tensor", "ndarray", "tftensor"])
@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.array([[1.5, 2.0], [3.0, -4.25]]), id="float-2d"),
        pytest.param(np.array([7.0, 8.0, 9.0]), id="float-1d"),
    ],
)
def test_array_to_grpc_datadef_round_trips(data_type: str, array: np.ndarray) -> None:
    datadef = utils.array_to_grpc_datadef(data_type, array, ["c0", "c1"])
    assert isinstance(datadef, pb.DefaultData)
    assert datadef.WhichOneof("data_oneof") == data_type
    assert list(datadef.names) == ["c0", "c1"]
    back = utils.grpc_datadef_to_array(datadef)
    np.testing.assert_array_equal(back, array)
    assert back.shape == array.shape


def test_array_to_rest_datadef_is_seldons_json() -> None:
    ints = np.array([[1, 2], [3, 4]])
    assert utils.array_to_rest_datadef("ndarray", ints, ["a", "b"]) == {
        "names": ["a", "b"],
        "ndarray": [[1, 2], [3, 4]],  # integers stay integers over REST
    }
    assert utils.array_to_rest_datadef("tensor", ints) == {
        "names": [],
        "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]},
    }
    tf = utils.array_to_rest_datadef("tftensor", np.array([1.0, 2.0]))["tftensor"]
    assert tf["dtype"] == "DT_DOUBLE"
    assert tf["tensorShape"] == {"dim": [{"size": "2"}]}
    assert np.frombuffer(base64.b64decode(tf["tensorContent"]), "<f8").tolist() == [1.0, 2.0]
    lv = utils.array_to_list_value(np.array([[1, 2], [3, 4]]))
    assert json_format.MessageToDict(lv) == [[1.0, 2.0], [3.0, 4.0]]
    datadef = pb.DefaultData(ndarray=lv)  # the class DefaultData takes, whatever its pool
    np.testing.assert_array_equal(utils.grpc_datadef_to_array(datadef), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("request_json", "result", "expected"),
    [
        pytest.param(
            {"data": {"tensor": {"shape": [1, 2], "values": [1, 2]}}},
            np.array([[0.25, 0.75]]),
            {"names": ["x", "y"], "tensor": {"shape": [1, 2], "values": [0.25, 0.75]}},
            id="tensor-in-tensor-out",
        ),
        pytest.param(
            {"data": {"ndarray": [[1, 2]]}},
            [[1, 2]],
            {"names": ["x", "y"], "ndarray": [[1, 2]]},
            id="ndarray-list-keeps-ints",
        ),
        pytest.param(
            {"strData": "in"},
            [[1, 2]],
            {"names": ["x", "y"], "tensor": {"shape": [1, 2], "values": [1, 2]}},
            id="no-data-numeric-is-tensor",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [1], "values": [1]}}},
            np.array(["a", "b"]),
            {"names": [], "ndarray": ["a", "b"]},
            id="strings-are-ndarray",
        ),
    ],
)
def test_construct_response_json_picks_seldons_data_kind(
    request_json: dict[str, Any], result: Any, expected: dict[str, Any]
) -> None:
    body = utils.construct_response_json(Classes(), False, request_json, result)
    assert body["data"] == expected
    assert body["meta"] == {"tags": {"static": 1}}
    json.dumps(body)  # plain Python values only


def test_construct_response_json_payload_kinds_and_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTIVE_UNIT_ID", "unit")
    monkeypatch.setenv("PREDICTIVE_UNIT_IMAGE", "repo/unit:1")
    request = {"strData": "x", "meta": {"puid": "abc", "requestPath": {"up": "repo/up:2"}}}
    body = utils.construct_response_json(
        Classes(),
        False,
        request,
        {"answer": 42},
        meta={"tags": {"given": True}, "metrics": [sc_metrics.create_gauge("g", 1.0)]},
        custom_metrics=[sc_metrics.create_counter("c", 2)],
        runtime_tags={"static": "overridden"},
    )
    assert body == {
        "jsonData": {"answer": 42},
        "meta": {
            "puid": "abc",
            "tags": {"given": True, "static": "overridden"},
            "requestPath": {"unit": "repo/unit:1", "up": "repo/up:2"},
            "metrics": [
                {"type": "GAUGE", "key": "g", "value": 1.0},
                {"type": "COUNTER", "key": "c", "value": 2},
            ],
        },
    }
    assert utils.construct_response_json(Classes(), False, {}, b"\x00\xff")["binData"] == "AP8="
    assert utils.construct_response_json(Classes(), False, {}, "s")["strData"] == "s"
    with pytest.raises(MicroserviceError, match="Unknown data type returned as payload"):
        utils.construct_response_json(Classes(), False, {}, 3.5)


def test_construct_response_builds_the_proto_answer() -> None:
    request = utils.json_to_seldon_message(
        {"data": {"names": ["f1", "f2"], "tensor": {"shape": [1, 2], "values": [1, 2]}},
         "meta": {"puid": "q"}}
    )  # fmt: skip
    reply = utils.construct_response(Classes(), False, request, np.array([[5, 6]]))
    assert reply.data.WhichOneof("data_oneof") == "tensor"
    assert list(reply.data.names) == ["x", "y"]
    assert list(reply.data.tensor.values) == [5.0, 6.0]
    assert reply.meta.puid == "q"
    as_input = utils.construct_response(Classes(), True, request, [[5, 6]])
    assert list(as_input.data.names) == ["f1", "f2"]  # is_request: the request's names
    text = utils.construct_response(Classes(), False, request, "done")
    assert text.strData == "done"
    nested = utils.construct_response(Classes(), False, request, {"k": [1, 2]})
    assert json_format.MessageToDict(nested.jsonData) == {"k": [1.0, 2.0]}
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.StringValue(value="custom"))  # protobuf's own Any class
    custom = utils.construct_response(Classes(), False, request, packed)
    assert custom.WhichOneof("data_oneof") == "customData"
    assert custom.customData.SerializeToString() == packed.SerializeToString()
    assert utils.get_data_from_proto(custom).type_url == packed.type_url


def test_extract_request_parts_json_and_feedback() -> None:
    features, meta, datadef, data_type = utils.extract_request_parts_json(
        {"data": {"tensor": {"shape": [2, 1], "values": [1, 2]}}, "meta": {"puid": "m"}}
    )
    np.testing.assert_array_equal(features, np.array([[1], [2]]))
    assert (meta, data_type) == ({"puid": "m"}, "data")
    assert datadef == {"tensor": {"shape": [2, 1], "values": [1, 2]}}
    assert utils.extract_request_parts_json({"binData": "AAE="})[0] == b"\x00\x01"
    assert utils.extract_request_parts_json({"jsonData": {"a": 1}})[0] == {"a": 1}

    feedback = utils.json_to_feedback(
        {"request": {"data": {"ndarray": [[1, 2]]}}, "truth": {"data": {"ndarray": [[1]]}},
         "reward": 0.5}
    )  # fmt: skip
    datadef, features, truth, reward = utils.extract_feedback_request_parts(feedback)
    assert isinstance(datadef, pb.DefaultData)
    np.testing.assert_array_equal(features, [[1.0, 2.0]])
    np.testing.assert_array_equal(truth, [[1.0]])
    assert reward == 0.5
    assert utils.feedback_to_json(feedback)["reward"] == 0.5


def test_getenv_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SC_COMPAT_A", raising=False)
    monkeypatch.setenv("SC_COMPAT_B", "T")
    assert utils.getenv("SC_COMPAT_A", "SC_COMPAT_B") == "T"
    assert utils.getenv("SC_COMPAT_A", default="d") == "d"
    assert utils.getenv_as_bool("SC_COMPAT_A", "SC_COMPAT_B")
    assert utils.getenv_as_bool("SC_COMPAT_A", default=True)
    monkeypatch.setenv("SC_COMPAT_B", "yes")  # Seldon knows only 1, true and t
    assert not utils.getenv_as_bool("SC_COMPAT_B")


def test_metrics_and_user_model_names() -> None:
    assert (sc_metrics.COUNTER, sc_metrics.GAUGE, sc_metrics.TIMER) == ("COUNTER", "GAUGE", "TIMER")
    assert sc_metrics.create_timer("t", 3) == {"type": "TIMER", "key": "t", "value": 3}
    assert sc_metrics.validate_metrics([sc_metrics.create_counter("c", 1)])
    assert not sc_metrics.validate_metrics({"key": "c"})
    assert not sc_metrics.validate_metrics([{"key": "c", "type": "HISTOGRAM", "value": 1}])
    assert not sc_metrics.validate_metrics([{"key": "c", "type": "GAUGE", "value": "1"}])

    response = user_model.SeldonResponse([1])
    assert (response.tags, response.metrics) == ({}, [])
    component = user_model.SeldonComponent(anything="ignored")
    assert component.tracer is None
    assert user_model.client_class_names(component, np.zeros((2, 3))) == ["t:0", "t:1", "t:2"]
    assert user_model.client_class_names(component, np.zeros(3)) == []
    assert user_model.client_feature_names(component, ["f"]) == ["f"]
    assert user_model.client_custom_tags(Classes()) == {"static": 1}
