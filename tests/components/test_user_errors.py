"""User exceptions that choose their own answer, over REST and gRPC (reference §1.3, §1.13;
checklist 12, 39): Seldon's ``model_error_handler`` blueprint, and the convention its
handlers follow, an exception with ``status_code`` and ``to_dict()``."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import LoadError
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.testing import serve_grpc

NDARRAY = {"data": {"ndarray": [[1, 2]]}}


class UserCustomException(Exception):
    """The exception of Seldon's documentation, with an application error code."""

    status_code = 404

    def __init__(self, message: str, application_error_code: int, http_status_code: int | None):
        Exception.__init__(self)
        self.message = message
        if http_status_code is not None:
            self.status_code = http_status_code
        self.application_error_code = application_error_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": {
                "status": self.status_code,
                "message": self.message,
                "app_code": self.application_error_code,
            }
        }


def raising(exc: BaseException) -> Any:
    """A model whose every method raises ``exc``."""

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise exc

    methods = ("predict", "transform_input", "transform_output", "route", "aggregate")
    namespace: dict[str, Any] = dict.fromkeys(methods, fail)
    namespace["send_feedback"] = lambda self, X, names, reward, truth, routing=None: fail(self)
    return type("Raising", (), namespace)()


ENDPOINTS = [
    pytest.param("/predict", NDARRAY, id="predict"),
    pytest.param("/transform-input", NDARRAY, id="transform-input"),
    pytest.param("/transform-output", NDARRAY, id="transform-output"),
    pytest.param("/route", NDARRAY, id="route"),
    pytest.param("/aggregate", [NDARRAY], id="aggregate"),
    pytest.param("/send-feedback", {"reward": 1}, id="feedback"),
]


def _rows() -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    msg.data.ndarray.extend([[1, 2]])
    return msg


GRPC_CALLS = [
    pytest.param(lambda ch: pb_grpc.ModelStub(ch).Predict(_rows(), timeout=30), id="predict"),
    pytest.param(
        lambda ch: pb_grpc.TransformerStub(ch).TransformInput(_rows(), timeout=30), id="input"
    ),
    pytest.param(lambda ch: pb_grpc.RouterStub(ch).Route(_rows(), timeout=30), id="route"),
    pytest.param(
        lambda ch: pb_grpc.CombinerStub(ch).Aggregate(
            pb.SeldonMessageList(seldonMessages=[_rows()]), timeout=30
        ),
        id="aggregate",
    ),
    pytest.param(
        lambda ch: pb_grpc.ModelStub(ch).SendFeedback(pb.Feedback(reward=1), timeout=30),
        id="feedback",
    ),
]


def grpc_error(user: Any, call: Any) -> grpc.RpcError:
    with (
        serve_grpc(user) as address,
        grpc.insecure_channel(address) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        call(channel)
    return caught.value


# ---------------------------------------------------------------- status_code and to_dict()


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
async def test_rest_status_code_and_to_dict_are_the_answer(asgi_client, path, body):
    user = raising(UserCustomException("Test-Error-Msg", 1402, 402))
    response = await asgi_client(user).post(path, json=body)
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": {"status": 402, "message": "Test-Error-Msg", "app_code": 1402}
    }


async def test_rest_class_status_code_is_the_default(asgi_client):
    user = raising(UserCustomException("missing", 7, None))
    response = await asgi_client(user).post("/predict", json=NDARRAY)
    assert response.status_code == 404
    assert response.json()["status"]["app_code"] == 7


@pytest.mark.parametrize("call", GRPC_CALLS)
@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(404, grpc.StatusCode.NOT_FOUND, id="404"),
        pytest.param(402, grpc.StatusCode.INVALID_ARGUMENT, id="402"),
        pytest.param(503, grpc.StatusCode.UNAVAILABLE, id="503"),
        pytest.param(507, grpc.StatusCode.INTERNAL, id="507"),
    ],
)
def test_grpc_status_code_maps_through_the_table(call, status, code) -> None:
    error = grpc_error(raising(UserCustomException("Test-Error-Msg", 1402, status)), call)
    assert error.code() is code
    details = error.details() or ""
    assert '"app_code":1402' in details and "Test-Error-Msg" in details  # the body, as text


async def test_async_method_raising_a_user_exception(asgi_client):
    class Async:
        async def predict(self, X, names):
            raise UserCustomException("later", 9, 409)

    response = await asgi_client(Async()).post("/predict", json=NDARRAY)
    assert response.status_code == 409
    assert response.json()["status"]["app_code"] == 9


class BadToDict(Exception):
    status_code = 418

    def to_dict(self) -> Any:
        raise RuntimeError("to_dict broke")


class ToDictNotADict(Exception):
    status_code = 418

    def to_dict(self) -> Any:
        return ["not", "a", "dict"]


class StatusNotAnInt(Exception):
    status_code = "418"

    def to_dict(self) -> Any:
        return {"x": 1}


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(BadToDict("boom"), id="to-dict-raises"),
        pytest.param(ToDictNotADict("boom"), id="to-dict-not-a-dict"),
        pytest.param(StatusNotAnInt("boom"), id="status-not-an-int"),
    ],
)
async def test_unusable_conventions_are_internal_errors(asgi_client, seldon_error, exc):
    response = await asgi_client(raising(exc)).post("/predict", json=NDARRAY)
    seldon_error(response, 500, "MICROSERVICE_INTERNAL_ERROR", "boom")


# ---------------------------------------------------------------- model_error_handler


def blueprint_model() -> Any:
    flask = pytest.importorskip("flask")

    class WithHandler:
        model_error_handler = flask.Blueprint("error_handlers", __name__)

        @model_error_handler.app_errorhandler(UserCustomException)
        def handle_custom_error(error):
            response = flask.jsonify({"handled": error.message, "code": error.status_code})
            response.status_code = 451
            return response

        @model_error_handler.app_errorhandler(KeyError)
        def handle_key_error(error):
            return "no such key", 422, {"Content-Type": "text/plain"}

        def predict(self, X, names):
            raise UserCustomException("refused", 1, 403)

        def transform_input(self, X, names):
            raise KeyError("k")

        def route(self, X, names):
            raise ValueError("no handler for this one")

    return WithHandler()


async def test_rest_model_error_handler_answers(asgi_client):
    client = asgi_client(blueprint_model())
    response = await client.post("/predict", json=NDARRAY)
    assert response.status_code == 451
    assert response.json() == {"handled": "refused", "code": 403}
    text = await client.post("/transform-input", json=NDARRAY)
    assert (text.status_code, text.text) == (422, "no such key")
    assert text.headers["content-type"].startswith("text/plain")


async def test_rest_exception_without_a_handler_is_an_internal_error(asgi_client, seldon_error):
    response = await asgi_client(blueprint_model()).post("/route", json=NDARRAY)
    seldon_error(response, 500, "MICROSERVICE_INTERNAL_ERROR", "no handler for this one")


def test_grpc_model_error_handler_sets_the_status() -> None:
    model = blueprint_model()
    error = grpc_error(model, lambda ch: pb_grpc.ModelStub(ch).Predict(_rows(), timeout=30))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT  # 451: a client error
    assert '"handled":"refused"' in (error.details() or "")
    error = grpc_error(model, lambda ch: pb_grpc.RouterStub(ch).Route(_rows(), timeout=30))
    assert error.code() is grpc.StatusCode.INTERNAL


def test_model_error_handler_must_be_a_blueprint() -> None:
    class NotABlueprint:
        model_error_handler = {"KeyError": "handler"}

        def predict(self, X, names):
            return X

    with pytest.raises(LoadError, match=r"NotABlueprint.model_error_handler must be a flask"):
        ComponentDataPlane(NotABlueprint())
