"""Fuzz what a client sends: mutated Seldon JSON, V2 JSON and V2 binary bodies over REST, and
mutated Seldon and V2 protobuf messages over gRPC, all to one component served in process.

Every answer must be a 2xx or a 4xx whose body says what was wrong; no case may take long;
and the server must still answer a good request at the end. Most REST cases go straight to
the app's ``respond`` coroutine (fast); every eighth goes through infergraph's own HTTP
server over a real socket. A failure names its seed, target and index: rerun it with
``INFERGRAPH_FUZZ_SEED`` and :func:`~fuzz.mutate.case_rng`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc
import orjson

from infergraph.app import component_app
from infergraph.protocol.proto import prediction_pb2
from infergraph.serving.server import bind_socket
from infergraph.testing import serve_grpc
from infergraph.wire.http1.server import HttpServer

from .cases import SELDON, SELDON_PATHS, Component, grpc_case, problem, rest_case, scope
from .mutate import case_count, dump_json, seed

CASE_SECONDS = 5.0
"""Longest one case may take: generous (the machine is noisy); a hang takes forever."""


# ---------------------------------------------------------------- a real socket


def _request(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"host: fuzz"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(f"content-length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


class Socket:
    """One keep-alive connection to the HTTP server, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
        if self.streams is None or self.streams[0].at_eof():
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(_request(path, headers, body))
        try:
            return await _read_answer(reader)
        finally:
            if reader.at_eof():
                await self.close()

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


GOOD = (SELDON_PATHS[0], [(b"content-type", b"application/json")], dump_json(SELDON[0]))


async def test_fuzz_rest_bodies() -> None:
    run_seed, cases = seed(), case_count()
    app = component_app(Component())
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    http = HttpServer(app)
    await http.start(sock)
    client = Socket(sock.getsockname()[1])
    failures: list[str] = []
    statuses: dict[int, int] = {}
    try:
        for index in range(cases):
            path, headers, body = rest_case(run_seed, index)
            started = time.monotonic()
            if index % 8 == 7:
                answer = client.post(path, headers, body)
                status, out = await asyncio.wait_for(answer, CASE_SECONDS * 4)
            else:
                status, _, out = await asyncio.wait_for(
                    app.respond(scope(path, headers), body), CASE_SECONDS * 4
                )
            seconds = time.monotonic() - started
            statuses[status] = statuses.get(status, 0) + 1
            wrong = problem(path, status, out)
            if wrong is None and seconds > CASE_SECONDS:
                wrong = f"took {seconds:.1f} s"
            if wrong is not None:
                failures.append(f"seed {run_seed} rest #{index} {path} {body[:200]!r}: {wrong}")
        for_app = await app.respond(scope(GOOD[0], GOOD[1]), GOOD[2])
        over_socket = await asyncio.wait_for(client.post(*GOOD), 30)
    finally:
        await client.close()
        await http.stop()
        app.dataplane.close()
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:10])
    assert for_app[0] == over_socket[0] == 200
    assert orjson.loads(over_socket[1])["data"]["ndarray"] == SELDON[0]["data"]["ndarray"]
    assert len(statuses) > 2, statuses  # the mutations reach past the JSON parser


# ---------------------------------------------------------------- gRPC

GRPC_BAD = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


def test_fuzz_grpc_messages() -> None:
    run_seed, cases = seed(), max(1, case_count() // 4)
    failures: list[str] = []
    with serve_grpc(Component()) as address, grpc.insecure_channel(address) as channel:
        calls = {
            method: channel.unary_unary(method)
            for method in (
                "/seldon.protos.Model/Predict",
                "/inference.GRPCInferenceService/ModelInfer",
            )
        }
        for index in range(cases):
            method, data = grpc_case(run_seed, index)
            try:
                calls[method](data, timeout=CASE_SECONDS * 4)
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details()
                if code in GRPC_BAD or not details:
                    failures.append(f"seed {run_seed} grpc #{index} {method} {data[:120]!r}: "
                                    f"{code} {details}")  # fmt: skip
        good = prediction_pb2.SeldonMessage(strData="still here").SerializeToString()
        answer = prediction_pb2.SeldonMessage.FromString(
            calls["/seldon.protos.Model/Predict"](good)
        )
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:10])
    assert answer.strData == "still here"


def test_cases_are_reproducible() -> None:
    assert rest_case(7, 3) == rest_case(7, 3)
    assert grpc_case(7, 3) == grpc_case(7, 3)
    assert json.dumps(str(rest_case(7, 3))) != json.dumps(str(rest_case(7, 4)))
