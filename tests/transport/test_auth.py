"""Bearer-token auth of the orchestrator's APIs and, when asked, of the node hop
(docs/security.md).

What a user relies on: with a token file, a REST call without ``Authorization: Bearer`` or
with a wrong token is a 401 with ``WWW-Authenticate: Bearer`` and the error JSON of its
path, a gRPC call UNAUTHENTICATED; the right token gets the answer; kubelet's probes, the
metrics and the dashboard's page stay open; a token added to the file (or removed) counts
within seconds; a microservice with a node token file requires it and the orchestrator's
node clients send it; ``serve --processes`` does not hand the external token to its nodes;
and without a token file nothing is in the way (the app and the handlers are the plain ones).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from infergraph.protocol.proto import inference_pb2 as v2
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.transport.auth import RequireToken, require_token
from infergraph.wire.grpc.client import GrpcChannel, RpcError
from infergraph.wire.http1.client import HttpPool
from infergraph.wire.tokens import BearerTokens
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import clean_env, http_request, poll
from tests.helpers.served import component, echo_graph, graph

PREDICT = {"data": {"ndarray": [[1.0, 2.0]]}}
SERVE = (sys.executable, "-m", "infergraph", "serve", "graph.yaml", "--host", "127.0.0.1")
V2_INFER = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0]}]}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text("first-token\n\n  second-token  \n")
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- REST


async def test_the_graph_refuses_rest_calls_without_the_token_and_answers_with_it(
    tmp_path: Path, token_file: Path
) -> None:
    async with (
        graph(tmp_path, auth_token_file=str(token_file)) as settings,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as api,
    ):
        missing = await api.post("/api/v1.0/predictions", json=PREDICT)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        status = missing.json()["status"]
        assert status["reason"] == "UNAUTHENTICATED" and "Authorization: Bearer" in status["info"]
        wrong = await api.post("/api/v1.0/predictions", json=PREDICT, headers=bearer("nope"))
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        for token in ("first-token", "second-token"):
            right = await api.post("/api/v1.0/predictions", json=PREDICT, headers=bearer(token))
            assert right.status_code == 200, right.text
        # the V2 paths answer V2's error JSON; the gateway's prefix is no way around it
        v2_missing = await api.post("/v2/models/echo/infer", json=V2_INFER)
        assert v2_missing.status_code == 401 and "error" in v2_missing.json()
        assert (await api.get("/v2/models/echo")).status_code == 401
        prefixed = "/seldon/models/echo/api/v1.0/predictions"
        assert (await api.post(prefixed, json=PREDICT)).status_code == 401
        answer = await api.post(prefixed, json=PREDICT, headers=bearer("first-token"))
        assert answer.status_code == 200
        assert (await api.post("/api/v1.0/feedback", json={})).status_code == 401
        for path in ("/api/v1.0/metadata", "/dashboard/api/state", "/dashboard/api/requests"):
            assert (await api.get(path)).status_code == 401, path
        # open: kubelet's probes, Prometheus, the dashboard's page, CORS preflights
        for path in ("/live", "/ready", "/v2/health/live", "/v2/health/ready", "/api/v1.0/status"):
            assert (await api.get(path)).status_code == 200, path
        assert (await api.get("/prometheus")).status_code == 200
        assert (await api.get("/dashboard")).status_code == 200
        assert (await api.options("/api/v1.0/predictions")).status_code == 200


async def test_a_token_added_to_the_file_counts_and_a_removed_one_stops(
    tmp_path: Path, token_file: Path
) -> None:
    async with (
        graph(tmp_path, auth_token_file=str(token_file)) as settings,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10) as api,
    ):

        async def status(token: str) -> int:
            answer = await api.post("/api/v1.0/predictions", json=PREDICT, headers=bearer(token))
            return answer.status_code

        assert await status("rotated-token") == 401
        fresh = token_file.with_name("tokens.new")
        fresh.write_text("rotated-token\n")
        fresh.replace(token_file)
        deadline = time.monotonic() + 10
        while await status("rotated-token") != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await status("rotated-token") == 200
        assert await status("first-token") == 401
        # a file emptied by mistake: the tokens before it are kept
        token_file.write_text("")
        await asyncio.sleep(1.2)
        assert await status("rotated-token") == 200


# ---------------------------------------------------------------- gRPC


def _grpc_calls(port: int, metadata: tuple[tuple[str, str], ...]) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        seldon = pb_grpc.SeldonStub(channel)
        return seldon.Predict(pb.SeldonMessage(strData="hi"), metadata=metadata, timeout=10)


@pytest.mark.parametrize("kind", ["native", "threads", "asyncio"])
async def test_the_graph_refuses_grpc_calls_without_the_token(
    tmp_path: Path, token_file: Path, kind: str
) -> None:
    async with graph(tmp_path, auth_token_file=str(token_file), grpc_server=kind) as settings:
        port = settings.grpc_port
        for metadata, why in (
            ((), "Authorization: Bearer"),
            ((("authorization", "Bearer x"),), "not one"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                await asyncio.to_thread(_grpc_calls, port, metadata)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert why in (refused.value.details() or "")
        answer = await asyncio.to_thread(
            _grpc_calls, port, (("authorization", "Bearer second-token"),)
        )
        assert answer.strData == "hi"

        def probes() -> tuple[bool, bool]:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = v2_grpc.GRPCInferenceServiceStub(channel)
                live = stub.ServerLive(v2.ServerLiveRequest(), timeout=10).live
                ready = stub.ServerReady(v2.ServerReadyRequest(), timeout=10).ready
                return live, ready

        assert await asyncio.to_thread(probes) == (True, True)


# ---------------------------------------------------------------- the node hop


async def test_a_node_that_requires_a_token_gets_it_from_the_node_clients(
    tmp_path: Path, token_file: Path
) -> None:
    async with component(node_auth_token_file=str(token_file)) as settings:
        body = json.dumps(PREDICT).encode()
        bare = HttpPool(f"127.0.0.1:{settings.http_port}", max_response_size=1 << 20)
        assert (await bare.request("POST", "/predict", body))[0] == 401
        assert (await bare.request("GET", "/ready"))[0] == 200
        assert (await bare.request("GET", "/health/ping"))[0] == 200
        await bare.aclose()
        tokens = BearerTokens(str(token_file))
        pool = HttpPool(f"127.0.0.1:{settings.http_port}", max_response_size=1 << 20, auth=tokens)
        assert (await pool.request("POST", "/predict", body))[0] == 200
        await pool.aclose()
        request = pb.SeldonMessage(strData="hi").SerializeToString()
        channel = GrpcChannel(f"127.0.0.1:{settings.grpc_port}")
        with pytest.raises(RpcError) as refused:
            await channel.unary("/seldon.protos.Model/Predict", request, 10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        await channel.close()
        channel = GrpcChannel(f"127.0.0.1:{settings.grpc_port}", auth=tokens)
        answer = await channel.unary("/seldon.protos.Model/Predict", request, 10)
        await channel.close()
        assert pb.SeldonMessage.FromString(answer).strData == "hi"


@pytest.mark.slow
def test_serve_processes_keeps_the_external_token_from_its_nodes(
    tmp_path: Path, token_file: Path, held_ports: HoldPorts
) -> None:
    """The nodes do not require the orchestrator's token (the orchestrator sends none to
    them); the node token, when set, is required by the nodes and sent to them."""
    echo_graph(tmp_path)
    node_tokens = tmp_path / "node-tokens"
    node_tokens.write_text("node-secret\n")
    http, grpc_port = held_ports(2)
    env = clean_env(
        {
            "INFERGRAPH_AUTH_TOKEN_FILE": str(token_file),
            "INFERGRAPH_NODE_AUTH_TOKEN_FILE": str(node_tokens),
        }
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SERVE, "--processes", "--http-port", str(http), "--grpc-port", str(grpc_port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        poll(lambda: http_request(http, "GET", "/ready")[0] == 200, timeout=60, what=log)
        with httpx.Client(timeout=10) as api:
            url = f"http://127.0.0.1:{http}/api/v1.0/predictions"
            assert api.post(url, json=PREDICT).status_code == 401
            answer = api.post(url, json=PREDICT, headers=bearer("first-token"))
            assert answer.status_code == 200, (answer.text, log.read_text())
            node_port = int(_node_rest_port(log.read_text()))
            node = f"http://127.0.0.1:{node_port}/predict"
            assert api.post(node, json=PREDICT, headers=bearer("first-token")).status_code == 401
            assert api.post(node, json=PREDICT, headers=bearer("node-secret")).status_code == 200
    finally:
        proc.kill()
        proc.wait(10)


def _node_rest_port(text: str) -> str:
    import re

    found = re.search(r"node echo-0: started pid \d+ \(REST 127\.0\.0\.1:(\d+)", text)
    assert found, text
    return found.group(1)


# ---------------------------------------------------------------- auth off


async def test_without_a_token_file_the_apps_and_handlers_are_the_plain_ones(
    tmp_path: Path,
) -> None:
    """The check is chosen when the servers are built: off, no layer and no wrapped handler."""
    from infergraph.serving import server as serving

    built: list[Any] = []
    original = serving.HttpServer

    class Recording(original):  # type: ignore[misc,valid-type]
        def __init__(self, app: Any, **kw: Any) -> None:
            built.append(app)
            super().__init__(app, **kw)

    serving.HttpServer = Recording  # type: ignore[misc]
    try:
        async with component():
            pass
        token = tmp_path / "t"
        token.write_text("x\n")
        async with component(node_auth_token_file=str(token)):
            pass
    finally:
        serving.HttpServer = original  # type: ignore[misc]
    plain, guarded = [a for a in built if type(a).__name__ != "MetricsApp"]
    assert type(plain).__name__ == "RestApp"
    assert isinstance(guarded, RequireToken)
    handler = grpc.unary_unary_rpc_method_handler(lambda r, c: r)
    services = {"s.S": {"M": handler, "Open": handler}}
    wrapped = require_token(services, BearerTokens(str(token)), {"/s.S/Open"})
    assert wrapped["s.S"]["Open"] is handler and wrapped["s.S"]["M"] is not handler


def test_tokens_are_compared_whole_and_by_scheme(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("abc\n")
    tokens = BearerTokens(str(path))
    assert tokens.accepts("Bearer abc") and tokens.accepts(b"bearer  abc ")
    for given in ("Bearer ab", "Bearer abcd", "Basic abc", "abc", "", None, "Bearer "):
        assert not tokens.accepts(given), given
    assert tokens.authorization() == "Bearer abc"
    for content, message in (("", "holds no token"), ("a b\n", "spaces")):
        path.write_text(content)
        with pytest.raises(ValueError, match=message):
            BearerTokens(str(path))
    with pytest.raises(ValueError, match="cannot read the token file"):
        BearerTokens(str(tmp_path / "missing"))


def test_serve_refuses_a_token_file_it_cannot_read(tmp_path: Path, held_ports: HoldPorts) -> None:
    (http,) = held_ports(1)
    missing = tmp_path / "missing-tokens"
    result = subprocess.run(
        [*SERVE, "--auth-token-file", str(missing), "--http-port", str(http)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"--auth-token-file: cannot read the token file {missing}" in result.stderr
