"""TLS on the REST and gRPC ports, from PEM files, reloaded when they change (docs/security.md).

What a user relies on: httpx, curl and grpcio reach a server over TLS with the CA's file; a
server with a CA file (mTLS) refuses a client without a certificate; a new certificate put
in place of the old is what the next connection is shown, while a broken new file leaves the
old one in use; the metrics port stays plain; infergraph's own node clients call a TLS node;
and ``serve --processes`` with node TLS runs its node processes in TLS. The CA and the
certificates are made here (tests/helpers/tls_certs.py).
"""

from __future__ import annotations

import asyncio
import http.client as http_client
import json
import logging
import re
import shlex
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings, GraphSettings
from infergraph.wire.grpc.client import GrpcChannel
from infergraph.wire.http1.client import ConnectFailed, HttpPool
from infergraph.wire.tls import GRPC_ALPN, REST_ALPN, ReloadingContext, TlsFiles
from tests.helpers.doc_blocks import ROOT, Block, blocks, shown
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import clean_env, http_request, poll
from tests.helpers.served import component, echo_graph
from tests.helpers.tls_certs import Issued, Pki, peer_serial, write_atomically

PREDICT = {"data": {"ndarray": [[1.0, 2.0]]}}
NODE_STARTED = r"node echo-0: started pid \d+ \(REST 127\.0\.0\.1:(\d+)"
CURL = ("curl", "-sS", "-H", "content-type: application/json")


REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
"""How httpx reports a handshake the server ended (TLS 1.3 tells the client after it)."""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def server_cert(pki: Pki) -> Issued:
    return pki.issue("server", serial=1001)


def client_ssl(pki: Pki, client: Issued | None = None, alpn: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if alpn:
        context.set_alpn_protocols([alpn])
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def seldon_predict(target: str, credentials: grpc.ChannelCredentials) -> Any:
    with grpc.secure_channel(target, credentials) as channel:
        request = pb.SeldonMessage(strData="hello")
        return pb_grpc.ModelStub(channel).Predict(request, timeout=10)


# ---------------------------------------------------------------- serving in TLS


@pytest.mark.parametrize("http_server", ["infergraph", "uvicorn"])
async def test_rest_answers_httpx_and_curl_over_tls_and_metrics_stay_plain(
    pki: Pki, server_cert: Issued, http_server: str
) -> None:
    files = TlsFiles(str(server_cert.cert), str(server_cert.key))
    async with component(tls=files, http_server=http_server, grpc_workers=0) as settings:
        base = f"https://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(verify=client_ssl(pki), timeout=10) as client:
            answer = await client.post(f"{base}/api/v1.0/predictions", json=PREDICT)
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["ndarray"] == [[1.0, 2.0]]
        url = f"https://localhost:{settings.http_port}/api/v1.0/predictions"
        curl = await asyncio.to_thread(
            subprocess.run,
            [*CURL, "--cacert", str(pki.ca), url, "-d", json.dumps(PREDICT)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["data"]["ndarray"] == [[1.0, 2.0]]
        # a client that does not trust the CA is refused by its own check
        async with httpx.AsyncClient(timeout=10) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"{base}/live")
        # Prometheus scrapes the metrics port in plain HTTP
        status, _, text = await asyncio.to_thread(
            http_request, settings.metrics_port, "GET", "/metrics"
        )
        assert status == 200 and text.startswith(b"#")


@pytest.mark.parametrize("kind", ["native", "threads", "asyncio"])
async def test_grpc_answers_grpcio_over_tls(pki: Pki, server_cert: Issued, kind: str) -> None:
    files = TlsFiles(str(server_cert.cert), str(server_cert.key))
    async with component(tls=files, grpc_server=kind) as settings:
        target = f"localhost:{settings.grpc_port}"
        trusting = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        answer = await asyncio.to_thread(seldon_predict, target, trusting)
        assert answer.strData == "hello"
        # a plain-text client gets no answer from a TLS port
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
            await asyncio.to_thread(
                pb_grpc.ModelStub(channel).Predict, pb.SeldonMessage(strData="x"), timeout=5
            )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("kind", ["native", "threads"])
async def test_mtls_refuses_a_client_without_a_certificate(
    pki: Pki, server_cert: Issued, kind: str
) -> None:
    client = pki.issue("client", client=True)
    stranger = Pki(pki.folder / "other", "another CA").issue("stranger", client=True)
    files = TlsFiles(str(server_cert.cert), str(server_cert.key), str(pki.ca))
    async with component(tls=files, grpc_server=kind) as settings:
        base = f"https://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(verify=client_ssl(pki, client), timeout=10) as with_cert:
            assert (await with_cert.post(f"{base}/predict", json=PREDICT)).status_code == 200
        for who in (None, stranger):
            async with httpx.AsyncClient(verify=client_ssl(pki, who), timeout=10) as without:
                with pytest.raises(
                    (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
                ):
                    await without.post(f"{base}/predict", json=PREDICT)
        target = f"localhost:{settings.grpc_port}"
        root = pki.ca.read_bytes()
        mutual = grpc.ssl_channel_credentials(
            root, client.key.read_bytes(), client.cert.read_bytes()
        )
        assert (await asyncio.to_thread(seldon_predict, target, mutual)).strData == "hello"
        with pytest.raises(grpc.RpcError) as refused:
            await asyncio.to_thread(seldon_predict, target, grpc.ssl_channel_credentials(root))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------- reload


async def _serial_becomes(port: int, pki: Pki, serial: int, alpn: str, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while True:
        seen = await asyncio.to_thread(peer_serial, port, pki.ca, alpn=alpn)
        if seen == serial or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", ["native", "threads"])
async def test_a_new_certificate_is_shown_to_new_connections_and_a_bad_one_is_not(
    pki: Pki, server_cert: Issued, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    files = TlsFiles(str(server_cert.cert), str(server_cert.key))
    async with component(tls=files, grpc_server=kind) as settings:
        rest, grpc_port = settings.http_port, settings.grpc_port
        assert await asyncio.to_thread(peer_serial, rest, pki.ca, alpn=REST_ALPN) == 1001
        assert await asyncio.to_thread(peer_serial, grpc_port, pki.ca, alpn=GRPC_ALPN) == 1001
        pki.issue("server", serial=2002)  # renewed in place, as cert-manager does
        assert await _serial_becomes(rest, pki, 2002, REST_ALPN) == 2002
        assert await _serial_becomes(grpc_port, pki, 2002, GRPC_ALPN) == 2002
        trusting = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        target = f"localhost:{grpc_port}"
        assert (await asyncio.to_thread(seldon_predict, target, trusting)).strData == "hello"
        # a certificate file cut short: logged, and the certificate in use is kept
        with caplog.at_level(logging.ERROR, logger="infergraph.wire.tls"):
            write_atomically(server_cert.cert, b"-----BEGIN CERTIFICATE-----\nMIIB\n")
            for _ in range(100):
                if "keeping the certificate in use" in caplog.text:
                    break
                await asyncio.sleep(0.1)
        assert "keeping the certificate in use" in caplog.text
        assert str(server_cert.cert) in caplog.text
        assert await asyncio.to_thread(peer_serial, rest, pki.ca, alpn=REST_ALPN) == 2002
        assert await asyncio.to_thread(peer_serial, grpc_port, pki.ca, alpn=GRPC_ALPN) == 2002
        async with httpx.AsyncClient(verify=client_ssl(pki), timeout=10) as client:
            answer = await client.post(f"https://127.0.0.1:{rest}/predict", json=PREDICT)
            assert answer.status_code == 200


def test_a_client_context_looks_at_its_files_at_most_once_a_second(pki: Pki) -> None:
    client = pki.issue("client", client=True)
    now = [0.0]
    files = TlsFiles(str(client.cert), str(client.key), str(pki.ca))
    context = ReloadingContext(
        files, ssl.create_default_context(cafile=str(pki.ca)), server=False, clock=lambda: now[0]
    )
    pki.issue("client", client=True)
    now[0] = 0.5
    context.fresh()
    assert context.reloads == 0
    now[0] = 1.5
    assert context.fresh() is context.context
    assert context.reloads == 1


# ---------------------------------------------------------------- node clients


async def test_the_node_clients_call_a_tls_node_and_check_its_name(
    pki: Pki, server_cert: Issued
) -> None:
    client = pki.issue("client", client=True)
    files = TlsFiles(str(server_cert.cert), str(server_cert.key), str(pki.ca))
    node_files = TlsFiles(str(client.cert), str(client.key), str(pki.ca))
    async with component(tls=files) as settings:
        pool = HttpPool(
            f"127.0.0.1:{settings.http_port}",
            max_response_size=1 << 20,
            tls=ReloadingContext.for_client(node_files, REST_ALPN),
        )
        status, body = await pool.request("POST", "/predict", json.dumps(PREDICT).encode())
        await pool.aclose()
        assert status == 200 and json.loads(body)["data"]["ndarray"] == [[1.0, 2.0]]
        channel = GrpcChannel(
            f"127.0.0.1:{settings.grpc_port}",
            tls=ReloadingContext.for_client(node_files, GRPC_ALPN),
        )
        answer = await channel.unary(
            "/seldon.protos.Model/Predict", pb.SeldonMessage(strData="hi").SerializeToString(), 10
        )
        await channel.close()
        assert pb.SeldonMessage.FromString(answer).strData == "hi"
    # a server whose certificate names another host: the client refuses it
    other = pki.issue("elsewhere", hosts=("models.example.com",))
    async with component(tls=TlsFiles(str(other.cert), str(other.key))) as settings:
        pool = HttpPool(
            f"127.0.0.1:{settings.http_port}",
            max_response_size=1 << 20,
            tls=ReloadingContext.for_client(node_files, REST_ALPN),
        )
        with pytest.raises(ConnectFailed, match=r"not valid for '127\.0\.0\.1'"):
            await pool.request("GET", "/live")
        await pool.aclose()


# ---------------------------------------------------------------- the command line


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infergraph", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--tls-cert-file", "{cert}"], "without its key file", id="cert-without-key"),
        pytest.param(
            ["--tls-cert-file", "{cert}", "--tls-key-file", "{folder}/missing.key"],
            "cannot read {folder}/missing.key",
            id="unreadable-key",
        ),
        pytest.param(
            ["--tls-cert-file", "{key}", "--tls-key-file", "{key}"],
            "do not load",
            id="not-a-certificate",
        ),
    ],
)
@pytest.mark.parametrize("command", ["microservice", "serve"])
def test_bad_tls_files_stop_the_command_with_a_message_naming_them(
    tmp_path: Path, server_cert: Issued, flags: list[str], message: str, command: str
) -> None:
    (tmp_path / "Echo.py").write_text(
        "class Echo:\n    def predict(self, X, names):\n        return X\n"
    )
    values = {"cert": server_cert.cert, "key": server_cert.key, "folder": tmp_path}
    argv = ["Echo"] if command == "microservice" else ["graph.yaml"]
    result = run_cli(command, *argv, *(f.format(**values) for f in flags), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message.format(**values) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_microservice_flags_serve_tls_to_curl(
    tmp_path: Path, pki: Pki, server_cert: Issued, held_ports: HoldPorts
) -> None:
    (tmp_path / "Echo.py").write_text(
        "class Echo:\n    def predict(self, X, names):\n        return X\n"
    )
    http, grpc_port, metrics = held_ports(3)
    args = ["microservice", "Echo", "--http-port", str(http), "--grpc-port", str(grpc_port)]
    args += ["--metrics-port", str(metrics), "--host", "127.0.0.1"]
    args += ["--tls-cert-file", str(server_cert.cert), "--tls-key-file", str(server_cert.key)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "infergraph", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        url = f"https://localhost:{http}/api/v1.0/predictions"

        def curl() -> subprocess.CompletedProcess[str] | None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            done = subprocess.run(
                [*CURL, "--cacert", str(pki.ca), url, "-d", json.dumps(PREDICT)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return done if done.returncode == 0 and done.stdout else None

        answer = poll(curl, timeout=30, what="curl over TLS")
        assert json.loads(answer.stdout)["data"]["ndarray"] == [[1.0, 2.0]]
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_serve_processes_with_node_tls_runs_its_nodes_in_mtls(
    tmp_path: Path, pki: Pki, server_cert: Issued, transport: str, held_ports: HoldPorts
) -> None:
    """The orchestrator serves TLS and calls its node processes in TLS with its client
    certificate; a node refuses plain text and a client without a certificate."""
    client = pki.issue("orchestrator", client=True)
    echo_graph(tmp_path, transport)
    http, grpc_port = held_ports(2)
    env = clean_env(
        {
            "INFERGRAPH_NODE_TLS_CA_FILE": str(pki.ca),
            "INFERGRAPH_NODE_TLS_CERT_FILE": str(client.cert),
            "INFERGRAPH_NODE_TLS_KEY_FILE": str(client.key),
        }
    )
    args = ["serve", "graph.yaml", "--processes", "--host", "127.0.0.1"]
    args += ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    args += ["--tls-cert-file", str(server_cert.cert), "--tls-key-file", str(server_cert.key)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infergraph", *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        with httpx.Client(verify=client_ssl(pki), timeout=10) as api:

            def ready() -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return api.get(f"https://127.0.0.1:{http}/ready").status_code == 200
                except httpx.TransportError:
                    return False

            poll(ready, timeout=60, what=f"ready: {log}")
            answer = api.post(f"https://127.0.0.1:{http}/api/v1.0/predictions", json=PREDICT)
            assert answer.status_code == 200, (answer.text, log.read_text())
            assert answer.json()["data"]["ndarray"] == [[1.0, 2.0]]
        found = re.search(
            r"node echo-0: started pid \d+ \(REST 127\.0\.0\.1:(\d+)", log.read_text()
        )
        assert found, log.read_text()
        node = int(found.group(1))
        with pytest.raises(http_client.RemoteDisconnected):
            http_request(node, "GET", "/ready")
        with httpx.Client(verify=client_ssl(pki)) as stranger, pytest.raises(REFUSED):
            stranger.get(f"https://127.0.0.1:{node}/ready")
        with httpx.Client(verify=client_ssl(pki, client), timeout=10) as orchestrator:
            assert orchestrator.get(f"https://127.0.0.1:{node}/ready").status_code == 200
    finally:
        proc.kill()
        proc.wait(10)


def test_serve_processes_with_node_tls_needs_a_certificate_for_its_nodes(
    tmp_path: Path, pki: Pki
) -> None:
    echo_graph(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "infergraph", "serve", "graph.yaml", "--processes"],
        cwd=tmp_path,
        env=clean_env({"INFERGRAPH_NODE_TLS_CA_FILE": str(pki.ca)}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "give --tls-cert-file and --tls-key-file" in result.stderr


# ---------------------------------------------------------------- docs/security.md

DOCS_TLS = shown("docs/security.md", "tests/wire/test_tls.py")
"""The blocks of docs/security.md this test runs: openssl making the files, then a server
in TLS (mTLS in the second pair) and curl calling it."""


def _doc_commands(block: Block) -> list[str]:
    out, pending = [], ""
    for line in block.lines:
        pending = f"{pending}\n{line}" if pending else line
        if not pending.endswith("\\"):
            out.append(pending)
            pending = ""
    return [command for command in out if command.strip()]


def _bash(command: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=folder, capture_output=True, text=True, timeout=60
    )


def _answer(command: str, folder: Path) -> dict[str, Any] | None:
    done = _bash(command, folder)
    if done.returncode != 0 or '"data"' not in done.stdout:
        return None
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.slow
def test_the_docs_tls_examples_run_as_shown(tmp_path: Path, held_ports: HoldPorts) -> None:
    model = next(
        b
        for b in blocks(ROOT / "docs/security.md")
        if b.marker and b.marker["file"] == "MyModel.py"
    )
    (tmp_path / "MyModel.py").write_text(model.text)
    server: subprocess.Popen[bytes] | None = None
    ports: dict[str, str] = {}
    answers = 0
    try:
        for block in DOCS_TLS:
            for command in _doc_commands(block):
                if command.startswith("infergraph microservice"):
                    if server is not None:
                        server.kill()
                        server.wait(10)
                    http, grpc_port, metrics = held_ports(3)
                    ports = {"9000": str(http), "5000": str(grpc_port)}
                    argv = shlex.split(command.replace("\\\n", " "))[1:]
                    argv += ["--http-port", str(http), "--grpc-port", str(grpc_port)]
                    argv += ["--metrics-port", str(metrics)]
                    server = subprocess.Popen(
                        [sys.executable, "-m", "infergraph", *argv],
                        cwd=tmp_path,
                        env=clean_env(),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                    continue
                for shown_port, port in ports.items():
                    command = command.replace(f"localhost:{shown_port}", f"localhost:{port}")
                assert command.split()[0] in ("openssl", "printf", "curl"), command
                if not command.startswith("curl"):
                    done = _bash(command, tmp_path)
                    assert done.returncode == 0, (command, done.stderr)
                    continue
                # the server may still be starting (or loading: a 503): asked again meanwhile
                answer = poll(lambda c=command: _answer(c, tmp_path), timeout=30, what=command)
                assert answer["data"]["ndarray"] == [[1, 2]]
                answers += 1
    finally:
        if server is not None:
            server.kill()
            server.wait(10)
    assert answers == 2  # TLS, then mutual TLS


# ---------------------------------------------------------------- settings


def test_an_encrypted_key_is_refused_rather_than_prompted_for(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    issued = pki.issue("server")
    key = serialization.load_pem_private_key(issued.key.read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ValueError, match="encrypted"):
        TlsFiles(str(issued.cert), str(locked)).check("TLS", server=True)


@pytest.mark.parametrize(
    ("env", "tls", "node_tls"),
    [
        pytest.param({}, None, None, id="off"),
        pytest.param(
            {"INFERGRAPH_TLS_CERT_FILE": "c", "INFERGRAPH_TLS_KEY_FILE": "k"},
            TlsFiles("c", "k"),
            None,
            id="server",
        ),
        pytest.param({"INFERGRAPH_NODE_TLS": "1"}, None, TlsFiles(), id="node-system-cas"),
        pytest.param(
            {"INFERGRAPH_NODE_TLS_CA_FILE": "ca"}, None, TlsFiles(ca_file="ca"), id="node-ca"
        ),
    ],
)
def test_tls_settings_come_from_the_environment(
    env: dict[str, str], tls: TlsFiles | None, node_tls: TlsFiles | None
) -> None:
    graph = GraphSettings.from_env(env)
    assert (graph.tls, graph.node_tls) == (tls, node_tls)
    assert ComponentSettings.from_env(env, {}).tls == tls
