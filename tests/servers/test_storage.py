"""Model storage: local paths in place; s3:// (a real S3 API) and http(s):// downloaded once
into a cache that survives neither a crash mid-download nor a race; clear errors."""

from __future__ import annotations

import io
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infergraph.errors import LoadError
from infergraph.servers import fetch, storage
from tests.helpers import model_stores
from tests.helpers.model_stores import S3, HttpRoot

s3 = model_stores.s3
s3_endpoint = model_stores.s3_endpoint
http_root = model_stores.http_root


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- local


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_local_model_is_used_in_place(tmp_path: Path, form: str) -> None:
    (tmp_path / "model.joblib").write_bytes(b"x")
    uri = str(tmp_path) if form == "path" else tmp_path.as_uri()
    cache = tmp_path / "cache"
    assert storage.resolve(uri, cache) == tmp_path
    assert not cache.exists()
    assert storage.origin(tmp_path) is None


def test_missing_local_model_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no file or folder at .*nope"):
        storage.resolve(str(tmp_path / "nope"), tmp_path)


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        pytest.param("pvc://claim/iris", ["PersistentVolumeClaim", "mounts"], id="pvc"),
        pytest.param("azure://box/iris", ["unsupported scheme azure://", "s3://"], id="azure"),
        pytest.param("", ["empty", "modelUri"], id="empty"),
    ],
)
def test_unfetchable_uris_are_explained(tmp_path: Path, uri: str, words: list[str]) -> None:
    with pytest.raises(LoadError) as info:
        storage.resolve(uri, tmp_path)
    for word in words:
        assert word in str(info.value)


def test_download_copies_a_local_folder(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "model.joblib").write_bytes(b"m")
    (source / "sub" / "a.txt").write_bytes(b"a")
    dest = storage.download(str(source), tmp_path / "dest")
    assert files(dest) == {"model.joblib": b"m", "sub/a.txt": b"a"}
    assert storage.origin(dest) is None  # a local copy is as trusted as its source


# ---------------------------------------------------------------- s3


def test_s3_prefix_downloads_recursively_and_once(s3: S3, tmp_path: Path) -> None:
    uri = s3.put("iris/model.joblib", b"model")
    s3.put("iris/sub/metadata.yaml", b"name: iris")
    cache = tmp_path / "cache"
    folder_uri = uri.rsplit("/", 1)[0]
    path = storage.resolve(folder_uri, cache, s3_endpoint_url=s3.endpoint)
    assert path.parent == cache
    assert files(path) == {
        storage.SOURCE_FILE: f"{folder_uri}\n".encode(),
        "model.joblib": b"model",
        "sub/metadata.yaml": b"name: iris",
    }
    assert storage.origin(path) == folder_uri
    s3.delete("iris/model.joblib")  # the cache answers from now on
    assert storage.resolve(folder_uri, cache, s3_endpoint_url=s3.endpoint) == path
    assert (path / "model.joblib").read_bytes() == b"model"
    assert [p.name for p in cache.iterdir()] == [path.name]  # no partial download left


def test_s3_single_object(s3: S3, tmp_path: Path) -> None:
    uri = s3.put("iris/model.skops", b"skops")
    path = storage.resolve(uri, tmp_path, s3_endpoint_url=s3.endpoint)
    assert (path / "model.skops").read_bytes() == b"skops"


def test_s3_missing_object_is_a_clear_error(s3: S3, tmp_path: Path) -> None:
    uri = f"s3://{s3.bucket}/nothing-here"
    with pytest.raises(LoadError, match="no object and no folder of that name"):
        storage.resolve(uri, tmp_path / "cache", s3_endpoint_url=s3.endpoint)
    assert list((tmp_path / "cache").iterdir()) == []


def test_s3_missing_bucket_is_a_clear_error(s3: S3, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"cannot download model s3://no-such-bucket-x/m"):
        storage.resolve("s3://no-such-bucket-x/m", tmp_path, s3_endpoint_url=s3.endpoint)


def test_the_s3_endpoint_is_part_of_the_cache_key(s3: S3, tmp_path: Path) -> None:
    uri = s3.put("m/model.txt", b"1")
    first = storage.resolve(uri, tmp_path, s3_endpoint_url=s3.endpoint)
    other = storage._cache_name(uri, "http://elsewhere:9000")
    assert first.name != other


# ---------------------------------------------------------------- http


def test_https_file_downloads_once(http_root: HttpRoot, tmp_path: Path) -> None:
    (http_root.folder / "model.joblib").write_bytes(b"model")
    uri = f"{http_root.url}/model.joblib"
    path = storage.resolve(uri, tmp_path)
    assert files(path) == {storage.SOURCE_FILE: f"{uri}\n".encode(), "model.joblib": b"model"}
    assert storage.resolve(uri, tmp_path) == path
    assert http_root.requests == ["/model.joblib"]


def test_https_archive_is_unpacked(http_root: HttpRoot, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("model.joblib", b"m"), ("metadata.yaml", b"name: x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (http_root.folder / "iris.tar.gz").write_bytes(buffer.getvalue())
    path = storage.resolve(f"{http_root.url}/iris.tar.gz", tmp_path)
    assert set(files(path)) == {storage.SOURCE_FILE, "model.joblib", "metadata.yaml"}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        pytest.param("missing.joblib", ["HTTP 404"], id="404"),
        pytest.param("", ["must name one file"], id="folder"),
    ],
)
def test_https_errors(http_root: HttpRoot, tmp_path: Path, name: str, words: list[str]) -> None:
    with pytest.raises(LoadError) as info:
        storage.resolve(f"{http_root.url}/{name}", tmp_path)
    for word in words:
        assert word in str(info.value)


def test_messages_hide_passwords_and_signatures(http_root: HttpRoot, tmp_path: Path) -> None:
    host = http_root.url.removeprefix("http://")
    with pytest.raises(LoadError) as info:
        storage.resolve(f"http://me:secret@{host}/gone.pkl?X-Amz-Signature=abc", tmp_path)
    assert "secret" not in str(info.value) and "abc" not in str(info.value)
    assert f"http://{host}/gone.pkl" in str(info.value)


# ---------------------------------------------------------------- robustness


def test_a_crash_mid_download_is_not_reused(
    http_root: HttpRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (http_root.folder / "model.joblib").write_bytes(b"model")
    uri = f"{http_root.url}/model.joblib"
    real = fetch.fetch_remote

    def crash(uri: str, dest: Path, **kwargs: str) -> None:
        (dest / "model.joblib").write_bytes(b"half")
        raise LoadError("connection reset")

    monkeypatch.setattr(storage, "fetch_remote", crash)
    cache = tmp_path / "cache"
    with pytest.raises(LoadError, match="connection reset"):
        storage.resolve(uri, cache)
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(storage, "fetch_remote", real)
    assert (storage.resolve(uri, cache) / "model.joblib").read_bytes() == b"model"


def test_concurrent_resolves_agree(http_root: HttpRoot, tmp_path: Path) -> None:
    (http_root.folder / "model.joblib").write_bytes(b"model" * 10_000)
    uri = f"{http_root.url}/model.joblib"
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: storage.resolve(uri, cache), range(8)))
    assert len(paths) == 1
    (path,) = paths
    assert (path / "model.joblib").read_bytes() == b"model" * 10_000
    assert [p.name for p in cache.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("uri", "package", "extra"),
    [
        pytest.param("s3://bucket/iris", "s3fs", "s3", id="s3"),
        pytest.param("gs://bucket/iris", "gcsfs", "gcs", id="gcs"),
    ],
)
def test_a_missing_backend_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, package: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(LoadError) as info:
        storage.resolve(uri, tmp_path)
    assert f"pip install 'infergraph[{extra}]'" in str(info.value)
    assert package in str(info.value)
