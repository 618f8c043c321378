"""Compressed request bodies (``Content-Encoding``), on Seldon's and V2's paths."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import numpy as np
import orjson
import pytest

from tests.conftest import ClientFactory


class Double:
    def predict(self, X: Any, names: Any) -> Any:
        return np.asarray(X) * 2


SELDON = orjson.dumps({"data": {"ndarray": [[1, 2]]}})
V2 = orjson.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "INT64", "data": [1, 2]}]})


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("deflate", zlib.compress, id="deflate"),
        pytest.param("deflate", raw_deflate, id="raw-deflate"),
        pytest.param("identity", lambda b: b, id="identity"),
    ],
)
async def test_compressed_bodies_are_inflated(
    asgi_client: ClientFactory, encoding: str, pack: Any
) -> None:
    client = asgi_client(Double(), unit_id="m")
    headers = {"content-encoding": encoding, "content-type": "application/json"}
    seldon = await client.post("/api/v1.0/predictions", content=pack(SELDON), headers=headers)
    assert seldon.status_code == 200, seldon.text
    assert seldon.json()["data"]["ndarray"] == [[2, 4]]
    v2 = await client.post("/v2/models/m/infer", content=pack(V2), headers=headers)
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [2, 4]


@pytest.mark.parametrize(
    ("encoding", "body", "status", "words"),
    [
        pytest.param("br", b"xx", 415, "Content-Encoding 'br' is not supported", id="brotli"),
        pytest.param("gzip", b"not gzip", 400, "not valid gzip data", id="garbage"),
        pytest.param("gzip", gzip.compress(V2)[:-12], 400, "truncated", id="truncated"),
        pytest.param("gzip", gzip.compress(b" " * 5000), 413, "inflates past", id="bomb"),
    ],
)
async def test_bad_encodings_are_clear_4xx(
    asgi_client: ClientFactory, encoding: str, body: bytes, status: int, words: str
) -> None:
    client = asgi_client(Double(), unit_id="m", max_message_size=4096)
    response = await client.post(
        "/v2/models/m/infer", content=body, headers={"content-encoding": encoding}
    )
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
