"""infergraph's HTTP/1.1 server against hostile or broken clients, over real sockets: each
limit of Http1Limits answers with a status and a body naming the setting, counts its trip,
and leaves the server serving; requests before a bad one are still answered."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from infergraph.app import component_app
from infergraph.serving.server import bind_socket, run_servers
from infergraph.settings import ComponentSettings
from infergraph.wire.http1.server import HttpServer
from infergraph.wire.limits import Http1Limits, WireLimits
from infergraph.wire.trips import counts


class Echo:
    def predict(self, X, names):
        return X


BODY = json.dumps({"data": {"ndarray": [[1, 2]]}}).encode()
PATH = "/api/v1.0/predictions"
WAIT = 10.0  # generous: a bound for what should take milliseconds, never a sleep

Start = Callable[..., Awaitable[tuple[int, HttpServer]]]
TOO_LARGE = "request headers exceed 65536 bytes (INFERGRAPH_HTTP1_MAX_HEADER_SIZE)"


def post(body: bytes = BODY, extra: str = "", path: str = PATH) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[HttpServer] = []

    async def start(limits: Http1Limits | None = None, app: Any = None) -> tuple[int, HttpServer]:
        if app is None:
            app = component_app(Echo(), max_message_size=1000)
            await app.ensure_loaded()
        sock = bind_socket("127.0.0.1", 0)
        http = HttpServer(app, limits=limits)
        await http.start(sock)
        servers.append(http)
        return sock.getsockname()[1], http

    yield start
    for http in servers:
        await http.stop()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    async def read() -> tuple[int, dict[str, str], bytes]:
        status_line = await reader.readline()
        assert status_line, "the server closed the connection without an answer"
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    return await asyncio.wait_for(read(), WAIT)


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (within WAIT) with nothing more to say."""
    return await asyncio.wait_for(reader.read(), WAIT) == b""


async def read_while_trickling(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, dict[str, str], bytes]:
    """The answer to a client that sends a byte every 50 ms (slowloris) until it comes."""

    async def trickle() -> None:
        while True:
            writer.write(b"X")
            await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    try:
        return await read_response(reader)
    finally:
        trickling.cancel()


def trips(limit: str) -> int:
    return counts().get(limit, 0)


async def test_a_request_target_past_the_cap_is_a_414_before_the_line_ends(start: Start) -> None:
    port, _ = await start()
    before = trips("http1.max_url_size")
    reader, writer = await connect(port)
    writer.write(b"GET /" + b"a" * 70_000)  # never finished: refused from its length alone
    status, headers, body = await read_response(reader)
    assert status == 414 and headers["connection"] == "close"
    assert body.decode() == ("request target exceeds 8192 bytes (INFERGRAPH_HTTP1_MAX_URL_SIZE)\n")
    assert await closed(reader)
    assert trips("http1.max_url_size") == before + 1
    writer.close()


async def test_a_target_the_url_parser_refuses_is_a_400_not_a_dead_connection(
    start: Start,
) -> None:
    port, _ = await start(Http1Limits(max_url_size=100_000))
    reader, writer = await connect(port)
    writer.write(post(path="/" + "a" * 70_000))  # httptools.parse_url: too long for it
    status, headers, body = await read_response(reader)
    if status == 404:  # the lowest httptools allowed (0.6.0) parses it: an answer all the same
        assert headers.get("connection") != "close"
    else:
        assert status == 400
        assert body.startswith(b"invalid request target: url is too long")
        assert await closed(reader)
    writer.close()


async def test_an_absolute_target_without_a_path_is_served_as_the_root(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(b"GET http://t?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")  # parse_url: no path
    status, _, _ = await read_response(reader)
    assert status == 404  # "/" is no endpoint; what matters is that an answer comes
    writer.close()


class Failing:
    max_body_size = 1000

    async def respond(self, scope, body):
        raise RuntimeError("a bug in the app")


async def test_an_app_that_raises_is_a_500_and_the_server_goes_on(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = await start(app=Failing())
    for _ in range(2):
        reader, writer = await connect(port)
        writer.write(post())
        status, headers, body = await read_response(reader)
        assert status == 500 and headers["connection"] == "close"
        assert body == b"the server failed to answer this request; see its log\n"
        assert await closed(reader)
        writer.close()
    assert "a bug in the app" in caplog.text


async def test_a_target_within_the_cap_is_served(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(post(path=PATH + "?x=" + "a" * 8000))
    status, _, _ = await read_response(reader)
    assert status == 200
    writer.close()


@pytest.mark.parametrize(
    "declared",
    [pytest.param(2_000_000, id="2MB"), pytest.param(10**12, id="1TB")],
)
@pytest.mark.parametrize(
    "expect", [pytest.param("", id="plain"), pytest.param("Expect: 100-continue\r\n", id="expect")]
)
async def test_a_body_declared_too_large_is_a_413_from_the_headers_alone(
    start: Start, declared: int, expect: str
) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n{expect}\r\n".encode()
    )
    status, headers, body = await read_response(reader)  # no 100 Continue first
    assert status == 413 and headers["connection"] == "close"
    assert (
        f"Request body of {declared} bytes exceeds the limit of 1000"
        in (json.loads(body)["status"]["info"])
    )
    assert await closed(reader)
    writer.close()


def send_all_then_read(port: int, request: bytes) -> bytes:
    """What a blocking client (requests, urllib3) does: send the whole request, then read."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        return sock.recv(65536)


async def test_a_client_still_sending_a_refused_body_reads_the_413(start: Start) -> None:
    port, _ = await start()
    # more than the kernel buffers hold: the server has answered (and would have closed,
    # resetting the connection) long before the client is done sending
    answer = await asyncio.to_thread(send_all_then_read, port, post(b"x" * 16_000_000))
    assert answer.startswith(b"HTTP/1.1 413 ")


async def test_a_bad_request_after_a_good_one_in_one_write_gets_its_own_answer(
    start: Start,
) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(post() + b"BAD LINE\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["data"]["ndarray"] == [[1, 2]]
    status, headers, body = await read_response(reader)
    assert status == 400 and headers["connection"] == "close"
    assert body.startswith(b"malformed HTTP/1.1 request: ")
    assert await closed(reader)
    writer.close()


async def test_pipelined_requests_before_an_upgrade_are_answered(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    upgrade = b"GET /live HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
    writer.write(post() + upgrade + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    for _ in range(2):
        status, headers, _ = await read_response(reader)
        assert status == 200
    assert headers["connection"] == "close"
    assert await closed(reader)
    writer.close()


@pytest.mark.parametrize(
    ("head", "limit", "text"),
    [
        pytest.param(
            b"X-Big: " + b"a" * 16_000_000 + b"\r\n",
            "max_header_size",
            TOO_LARGE,
            id="16MB-header",
        ),
        pytest.param(
            b"X-Big: " + b"a" * 70_000 + b"\r\n",
            "max_header_size",
            TOO_LARGE,
            id="70KB-header-in-one-chunk",
        ),
        pytest.param(
            b"".join(b"X-%d: 1\r\n" % i for i in range(100_000)),
            "max_header_size",
            TOO_LARGE,
            id="100k-headers",
        ),
        pytest.param(
            b"".join(b"X-%d: 1\r\n" % i for i in range(101)),
            "max_headers",
            "request has more than 100 header fields (INFERGRAPH_HTTP1_MAX_HEADERS)",
            id="101-headers",
        ),
    ],
)
async def test_too_much_header_is_a_431(start: Start, head: bytes, limit: str, text: str) -> None:
    port, _ = await start()
    before = trips(f"http1.{limit}")
    reader, writer = await connect(port)
    writer.write(b"GET / HTTP/1.1\r\n" + head + b"\r\n")
    status, headers, body = await read_response(reader)
    assert status == 431 and headers["connection"] == "close"
    assert body.decode() == text + "\n"
    assert await closed(reader)
    assert trips(f"http1.{limit}") == before + 1
    writer.close()


async def test_a_head_that_trickles_in_is_a_408_after_header_timeout(start: Start) -> None:
    port, _ = await start(Http1Limits(header_timeout=0.5))
    before = trips("http1.header_timeout")
    reader, writer = await connect(port)
    writer.write(b"GET / HTTP/1.1\r\n")

    status, headers, body = await read_while_trickling(reader, writer)  # never a blank line
    assert status == 408 and headers["connection"] == "close"
    assert body.decode() == (
        "request line and headers did not arrive within 0.5 s (INFERGRAPH_HTTP1_HEADER_TIMEOUT)\n"
    )
    assert trips("http1.header_timeout") == before + 1
    writer.close()


async def test_many_trickling_connections_are_all_timed_out(start: Start) -> None:
    port, _ = await start(Http1Limits(header_timeout=0.5))
    clients = [await connect(port) for _ in range(201)]
    for _, writer in clients:
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n")
    answers = await asyncio.gather(*(read_response(reader) for reader, _ in clients))
    assert {status for status, _, _ in answers} == {408}
    for _, writer in clients:
        writer.close()


async def test_a_body_that_stops_arriving_is_a_408_after_body_timeout(start: Start) -> None:
    port, _ = await start(Http1Limits(body_timeout=0.5))
    before = trips("http1.body_timeout")
    reader, writer = await connect(port)
    writer.write(post()[:-3])  # all but the body's last bytes
    status, headers, body = await read_response(reader)
    assert status == 408 and headers["connection"] == "close"
    assert body.decode() == (
        "request body: no byte arrived for 0.5 s (INFERGRAPH_HTTP1_BODY_TIMEOUT)\n"
    )
    assert await closed(reader)
    assert trips("http1.body_timeout") == before + 1
    writer.close()


async def test_a_slow_body_that_keeps_arriving_is_served(start: Start) -> None:
    port, _ = await start(Http1Limits(body_timeout=1.0, header_timeout=1.0))
    reader, writer = await connect(port)
    request = post()
    head = request[: -len(BODY)]
    writer.write(head)
    for i in range(0, len(BODY), 4):  # over longer than either timeout, with short gaps
        await asyncio.sleep(0.15)
        writer.write(BODY[i : i + 4])
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["data"]["ndarray"] == [[1, 2]]
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_quietly(start: Start) -> None:
    port, _ = await start(Http1Limits(keepalive_timeout=0.3))
    before = trips("http1.keepalive_timeout")
    reader, writer = await connect(port)
    writer.write(post())
    status, _, _ = await read_response(reader)
    assert status == 200
    assert await closed(reader)  # no answer, just the close
    assert trips("http1.keepalive_timeout") == before + 1
    writer.close()


async def test_a_connection_past_max_connections_is_a_503(start: Start) -> None:
    port, http = await start(Http1Limits(max_connections=2))
    before = trips("http1.max_connections")
    held = [await connect(port) for _ in range(2)]
    for reader, writer in held:  # both accepted and served
        writer.write(post())
        assert (await read_response(reader))[0] == 200
    reader, writer = await connect(port)
    status, headers, body = await read_response(reader)
    assert status == 503 and headers["connection"] == "close"
    assert body.decode() == (
        "server already has 2 open connections; retry later (INFERGRAPH_HTTP1_MAX_CONNECTIONS)\n"
    )
    assert await closed(reader)
    assert trips("http1.max_connections") == before + 1
    writer.close()
    held[0][1].close()  # one goes: there is room again
    async with asyncio.timeout(WAIT):
        while len(http.connections) > 1:
            await asyncio.sleep(0.01)
    reader, writer = await connect(port)
    writer.write(post())
    assert (await read_response(reader))[0] == 200
    for _, w in [*held, (reader, writer)]:
        w.close()


async def test_expect_100_continue_is_answered_before_the_body(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    request = post(extra="Expect: 100-continue\r\n")
    writer.write(request[: -len(BODY)])
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(BODY)
    status, _, body = await read_response(reader)
    assert status == 200 and json.loads(body)["data"]["ndarray"] == [[1, 2]]
    writer.close()


async def test_expect_100_continue_waits_for_the_answers_owed(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    request = post(extra="Expect: 100-continue\r\n")
    writer.write(post() + request[: -len(BODY)])
    assert (await read_response(reader))[0] == 200  # the first request's answer comes first
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(BODY)
    assert (await read_response(reader))[0] == 200
    writer.close()


@pytest.mark.parametrize(
    ("framing", "reason"),
    [
        pytest.param(
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            (b"Transfer-Encoding", b"Content-Length", b"can't be present with"),
            id="length-and-chunked",
        ),
        pytest.param(
            b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            (b"Transfer-Encoding", b"Content-Length", b"can't be present with"),
            id="chunked-and-length",
        ),
        pytest.param(
            b"Content-Length: 5\r\nContent-Length: 6\r\n",
            (b"Duplicate Content-Length",),
            id="two-lengths",
        ),
    ],
)
async def test_ambiguous_body_framing_is_a_400_and_closes(
    start: Start, framing: bytes, reason: tuple[bytes, ...]
) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: t\r\n" + framing + b"\r\n")
    writer.write(b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 400
    assert body.startswith(b"malformed HTTP/1.1 request: ") and body.endswith(b"\n")
    assert all(word in body for word in reason), body  # httptools' words, which vary by version
    assert await closed(reader)  # the smuggled request is never answered
    writer.close()


async def test_the_servers_take_their_limits_from_the_settings() -> None:
    app = component_app(Echo())
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = ComponentSettings(wire=WireLimits(http1=Http1Limits(max_url_size=64)))
    stop = asyncio.Event()
    serving = asyncio.create_task(run_servers([(app, sock)], None, settings, stop))
    try:
        reader, writer = await connect(port)  # bound and listening: answered once served
        writer.write(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n")
        status, _, body = await read_response(reader)
        assert status == 414 and b"exceeds 64 bytes" in body
        writer.close()
    finally:
        stop.set()
        await serving


class HeadersApp:
    """Answers with the headers it was given, as JSON."""

    max_body_size = 1 << 20

    async def respond(self, scope, body):
        out = json.dumps([[n.decode(), v.decode()] for n, v in scope["headers"]]).encode()
        return 200, [(b"content-length", b"%d" % len(out))], out


CHUNKED = b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"


async def test_trailers_are_not_merged_into_the_headers(start: Start) -> None:
    port, _ = await start(app=HeadersApp())
    reader, writer = await connect(port)
    writer.write(CHUNKED + b"X-Forwarded-For: 10.0.0.1\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 200
    assert json.loads(body) == [["host", "t"], ["transfer-encoding", "chunked"]]
    writer.close()


async def test_a_trailer_section_without_end_is_a_431(start: Start) -> None:
    port, _ = await start()
    reader, writer = await connect(port)
    writer.write(CHUNKED + b"X-Big: " + b"a" * 16_000_000)
    status, _, body = await read_response(reader)
    assert status == 431
    assert body == (
        b"request trailers or chunk framing exceed 65536 bytes (INFERGRAPH_HTTP1_MAX_HEADER_SIZE)\n"
    )
    writer.close()


async def test_trailers_that_trickle_in_are_a_408_after_body_timeout(start: Start) -> None:
    port, _ = await start(Http1Limits(body_timeout=0.5))
    reader, writer = await connect(port)
    writer.write(CHUNKED)
    status, _, body = await read_while_trickling(reader, writer)  # trailer bytes, no body
    assert status == 408 and b"INFERGRAPH_HTTP1_BODY_TIMEOUT" in body
    writer.close()
