"""Real remote model stores for tests, in this process on free ports: an S3 API (moto's
server, which speaks the same HTTP as AWS, so s3fs and botocore run unchanged) and a plain
HTTP file server. Both report readiness themselves; nothing sleeps.

Use from a test module as ``s3 = model_stores.s3`` and ``http_root = model_stores.http_root``.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

__all__ = ["S3", "HttpRoot", "http_root", "s3", "s3_endpoint"]

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server shared by the session (each test gets its own bucket)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the server listens
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class S3:
    endpoint: str
    bucket: str
    client: Any

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return f"s3://{self.bucket}/{key}"

    def put_folder(self, prefix: str, folder: Path) -> str:
        """Upload every file under ``folder``; return the ``s3://`` URI of the prefix."""
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        return f"s3://{self.bucket}/{prefix}"

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A fresh bucket on the session's S3 server, with fake credentials in the env (which
    botocore reads); the endpoint is passed explicitly by each test, as settings would."""
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3(s3_endpoint, bucket, client)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class HttpRoot:
    url: str
    folder: Path
    requests: list[str]


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[HttpRoot]:
    """A threaded HTTP server on a free port serving a fresh folder; it records the paths
    it was asked for, so a test can tell a cached model from a downloaded one."""
    folder = tmp_path / "www"
    folder.mkdir()
    requests: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    # shutdown() waits for the loop to notice: a short poll keeps teardown fast
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield HttpRoot(f"http://127.0.0.1:{server.server_address[1]}", folder, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
