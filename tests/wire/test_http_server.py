"""infergraph's own HTTP/1.1 server, over real sockets: keep-alive, pipelining, limits, errors."""

from __future__ import annotations

import asyncio
import json

import pytest

from infergraph.app import component_app
from infergraph.serving.server import bind_socket
from infergraph.wire.http1.server import HttpServer


class Echo:
    def predict(self, X, names):
        return X


BODY = json.dumps({"data": {"ndarray": [[1, 2]]}}).encode()


def post(body: bytes = BODY, extra: str = "") -> bytes:
    return (
        "POST /api/v1.0/predictions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.fixture
async def server():
    app = component_app(Echo(), max_message_size=1000)
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    http = HttpServer(app)
    await http.start(sock)
    yield sock.getsockname()[1]
    await http.stop()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def test_keep_alive_serves_several_requests_on_one_connection(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    for _ in range(3):
        writer.write(post())
        status, headers, body = await read_response(reader)
        assert status == 200
        assert json.loads(body)["data"]["ndarray"] == [[1, 2]]
        assert headers["content-type"] == "application/json"
    writer.close()


async def test_pipelined_requests_are_answered_in_order(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    bodies = [json.dumps({"data": {"ndarray": [[i]]}}).encode() for i in range(5)]
    writer.write(b"".join(post(b) for b in bodies))
    answers = [json.loads((await read_response(reader))[2]) for _ in bodies]
    assert [a["data"]["ndarray"] for a in answers] == [[[i]] for i in range(5)]
    writer.close()


async def test_chunked_body_is_read_whole(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    half = len(BODY) // 2
    chunks = [BODY[:half], BODY[half:]]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    writer.write(
        b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + encoded
    )
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["data"]["ndarray"] == [[1, 2]]
    writer.close()


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
async def test_body_over_the_limit_is_a_413_with_seldon_json(server: int, chunked: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    big = b'{"strData": "' + b"x" * 5000 + b'"}'
    if chunked:
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
        )
    else:
        writer.write(post(big))
    status, _, body = await read_response(reader)
    assert status == 413
    assert "exceeds the limit of 1000 bytes" in json.loads(body)["status"]["info"]
    writer.close()


async def test_malformed_request_gets_400_and_the_connection_closes(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"THIS IS NOT HTTP\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 400
    assert await reader.read() == b""  # closed
    writer.close()


async def test_connection_close_is_honoured(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(post(extra="Connection: close\r\n"))
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await reader.read() == b""
    writer.close()


async def test_http_1_0_without_keep_alive_closes(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /health/ping HTTP/1.0\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"pong")
    assert await reader.read() == b""
    writer.close()


async def test_query_string_and_unknown_path(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    query = "json=%7B%22data%22%3A%7B%22ndarray%22%3A%5B%5B3%5D%5D%7D%7D"
    writer.write(f"GET /predict?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["data"]["ndarray"] == [[3]]
    writer.write(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 404 and "no endpoint at /nope" in json.loads(body)["status"]["info"]
    writer.close()
