"""The access log of infergraph's own HTTP server (``--access-log``, GUNICORN_ACCESS_LOG).

One line per answered request on the ``infergraph.access`` logger: client, method and
path, status, milliseconds, and the puid when the answer carries one. Errors and the V2
paths get their line too; a server without ``access_log`` writes none. The CLI's flag and
environment are tested on real processes in ``test_cli_microservice`` and ``test_cli_serve``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator

import pytest

from infergraph.app import component_app
from infergraph.cli.server_process import LOG_FORMAT
from infergraph.serving.server import bind_socket
from infergraph.transport.rest.access_log import (
    ACCESS_LOGGER,
    access_line,
    answer_puid,
    client_address,
)
from infergraph.transport.rest.asgi import PUID
from infergraph.transport.rest.server import HttpServer
from tests.helpers.doc_blocks import same_shape, shown

LINE = re.compile(r'^127\.0\.0\.1 "(\S+) (\S+)" (\d{3}) \d+\.\dms(?: puid=(\S+))?$')


class Echo:
    def predict(self, X, names):
        return X


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ("10.0.0.7", "POST", "/api/v1.0/predictions", 200, 0.00134, "p-1"),
            '10.0.0.7 "POST /api/v1.0/predictions" 200 1.3ms puid=p-1',
            id="with-puid",
        ),
        pytest.param(
            ("10.0.0.7", "GET", "/nope", 404, 0.0002, ""),
            '10.0.0.7 "GET /nope" 404 0.2ms',
            id="without-puid",
        ),
        pytest.param(
            ("::1", "GET", '/a"b', 404, 0.0, ""),
            '::1 "GET /a%22b" 404 0.0ms',
            id="quote-in-path",
        ),
    ],
)
def test_access_line(args: tuple[str, str, str, int, float, str], line: str) -> None:
    assert access_line(*args) == line


@pytest.mark.parametrize(
    ("peername", "shown"),
    [
        pytest.param(("127.0.0.1", 50000), "127.0.0.1", id="ipv4"),
        pytest.param(("::1", 50000, 0, 0), "::1", id="ipv6"),
        pytest.param(None, "-", id="unknown"),
    ],
)
def test_client_address(peername: object, shown: str) -> None:
    assert client_address(peername) == shown


def test_answer_puid_from_the_scope_else_the_seldon_puid_header() -> None:
    headers = [(b"content-type", b"application/json"), (b"seldon-puid", b"from-header")]
    assert answer_puid({PUID: "from-scope"}, headers) == "from-scope"
    assert answer_puid({}, headers) == "from-header"
    assert answer_puid({}, headers[:1]) == ""


async def _serve(access_log: bool) -> AsyncIterator[int]:
    app = component_app(Echo(), max_message_size=1000)
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    http = HttpServer(app, access_log=access_log)
    await http.start(sock)
    yield sock.getsockname()[1]
    await http.stop()


@pytest.fixture
async def logged() -> AsyncIterator[int]:
    async for port in _serve(access_log=True):
        yield port


@pytest.fixture
async def plain() -> AsyncIterator[int]:
    async for port in _serve(access_log=False):
        yield port


async def exchange(port: int, requests: list[tuple[str, str, bytes]]) -> list[int]:
    """Send ``(method, path, body)`` requests, each on its own connection; their statuses."""
    statuses = []
    for method, path, body in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        statuses.append(int((await reader.readline()).split()[1]))
        await reader.read()  # the rest, until the server closes
        writer.close()
        await writer.wait_closed()
    return statuses


def access_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, ...]]:
    """(method, path, status, puid) of each access line, checking its form."""
    out = []
    for record in caplog.records:
        if record.name == ACCESS_LOGGER:
            assert record.levelno == logging.INFO
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            out.append((match[1], match[2], match[3], match[4] or ""))
    return out


V2_BODY = json.dumps(
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}
).encode()
SELDON_BODY = json.dumps({"meta": {"puid": "p-7"}, "data": {"ndarray": [[1, 2]]}}).encode()


async def test_a_line_per_answer_with_errors_and_v2_paths(
    logged: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    requests = [
        ("POST", "/api/v1.0/predictions", SELDON_BODY),
        ("POST", "/api/v1.0/predictions?x=1", b"[1]"),
        ("POST", "/v2/models/infer", V2_BODY),
        ("POST", "/v2/models/infer", b'{"inputs": 1}'),
        ("POST", "/predict", b'{"strData": "' + b"x" * 2000 + b'"}'),
        ("GET", "/nope", b""),
    ]
    statuses = await exchange(logged, requests)
    assert statuses == [200, 400, 200, 400, 413, 404]
    assert access_records(caplog) == [
        ("POST", "/api/v1.0/predictions", "200", "p-7"),
        ("POST", "/api/v1.0/predictions", "400", ""),  # no query string in the line
        ("POST", "/v2/models/infer", "200", ""),
        ("POST", "/v2/models/infer", "400", ""),
        ("POST", "/predict", "413", ""),
        ("GET", "/nope", "404", ""),
    ]
    # the lines docs/microservice.md shows, as the CLI's log format writes them
    formatter = logging.Formatter(LOG_FORMAT)
    printed = [
        re.sub(r"puid=\S+", "puid=abc", formatter.format(r))
        for r in caplog.records
        if r.name == ACCESS_LOGGER
    ]
    for line in shown("docs/microservice.md", "tests/transport/test_access_log.py")[0].lines:
        assert any(same_shape(line, p) for p in printed), (line, printed)


async def test_no_line_without_access_log(plain: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    statuses = await exchange(plain, [("POST", "/api/v1.0/predictions", SELDON_BODY)])
    assert statuses == [200]
    assert access_records(caplog) == []
