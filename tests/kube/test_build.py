"""``infergraph build``: an s2i model folder read as s2i reads it, the Dockerfile written from
it, the builder chosen and run (a recording stand-in here; the real podman build is in
test_podman_pod.py), and bad input refused with one clear line and a non-zero exit."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from infergraph.cli.main import main
from infergraph.kube.build import (
    BuildError,
    build_command,
    dockerfile,
    find_builder,
    read_model_folder,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "podman" / "transformer"


def model_folder(tmp_path: Path, env: str | None = "MODEL_NAME=Model\n", **files: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "Model.py").write_text("class Model:\n    def predict(self, X):\n        return X\n")
    if env is not None:
        (folder / ".s2i").mkdir()
        (folder / ".s2i" / "environment").write_text(env)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


# ---------------------------------------------------------------- the folder


def test_the_fixture_reads_as_s2i_reads_it() -> None:
    model = read_model_folder(FIXTURE)
    assert model.env == {
        "MODEL_NAME": "Transformer",
        "SERVICE_TYPE": "TRANSFORMER",
        "PERSISTENCE": "0",
        "API_TYPE": "REST",
    }
    assert not model.requirements  # only a comment: nothing to install
    assert model.warnings == ()


def test_env_overrides_win_and_can_replace_the_file(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, env="MODEL_NAME=Model\nSERVICE_TYPE=MODEL\n")
    model = read_model_folder(folder, {"SERVICE_TYPE": "ROUTER", "EXTRA": "1"})
    assert model.env == {"MODEL_NAME": "Model", "SERVICE_TYPE": "ROUTER", "EXTRA": "1"}
    bare = model_folder(tmp_path / "bare", env=None)
    assert read_model_folder(bare, {"MODEL_NAME": "Model"}).model_name == "Model"


def test_a_module_that_is_not_in_the_folder_is_a_warning(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, env="MODEL_NAME=infergraph.servers.SKLearnServer\n")
    (warning,) = read_model_folder(folder).warnings
    assert "infergraph/servers.py" in warning


@pytest.mark.parametrize(
    ("env", "words"),
    [
        pytest.param(None, ["does not exist", "--env MODEL_NAME"], id="no-environment-file"),
        pytest.param("SERVICE_TYPE=MODEL\n", ["has no MODEL_NAME"], id="no-model-name"),
        pytest.param("MODEL_NAME=M\nSERVICE_TYPE=SERVER\n", ["SERVER", "TRANSFORMER"], id="type"),
        pytest.param("MODEL_NAME Model\n", ["not a KEY=VALUE line"], id="bad-line"),
    ],
)
def test_bad_folders_are_explained(tmp_path: Path, env: str | None, words: list[str]) -> None:
    with pytest.raises(BuildError) as info:
        read_model_folder(model_folder(tmp_path, env=env))
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------- the Dockerfile


def test_dockerfile_without_requirements(tmp_path: Path) -> None:
    model = read_model_folder(FIXTURE)
    text = dockerfile(model, "localhost/infergraph:1.2")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "FROM localhost/infergraph:1.2",
        "USER root",
        "COPY --chown=8888:8888 ./ /microservice/",
        "USER 8888",
        "WORKDIR /microservice",
        'ENV MODEL_NAME="Transformer" \\',
        '    SERVICE_TYPE="TRANSFORMER" \\',
        '    PERSISTENCE="0" \\',
        '    API_TYPE="REST"',
        'LABEL io.infergraph.model-name="Transformer"',
        'ENTRYPOINT ["infergraph"]',
        'CMD ["microservice"]',
    ]


def test_dockerfile_installs_requirements_before_copying_the_code(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, **{"requirements.txt": "numpy\n"})
    text = dockerfile(read_model_folder(folder), "base")
    pip = text.index("RUN pip install --no-cache-dir -r /microservice/requirements.txt")
    assert text.index("COPY ./requirements.txt /microservice/requirements.txt") < pip
    assert pip < text.index("COPY --chown=8888:8888 ./ /microservice/")  # code changes keep
    # the requirements layer cached


def test_dockerfile_with_wheels_needs_no_index(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, **{"requirements.txt": "numpy\n"})
    text = dockerfile(read_model_folder(folder), "base", source="model", wheels="wheels")
    assert "COPY wheels/ /tmp/infergraph-wheels/" in text
    assert "--no-index --find-links /tmp/infergraph-wheels" in text
    assert "COPY --chown=8888:8888 model/ /microservice/" in text


def test_env_values_are_literal(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, env='MODEL_NAME=Model\nGREETING=say "hi" to $USER\\n\n')
    text = dockerfile(read_model_folder(folder), "base")
    assert 'GREETING="say \\"hi\\" to \\$USER\\\\n"' in text


# ---------------------------------------------------------------- the builder


def test_the_daemonless_builders_come_first() -> None:
    assert find_builder(which=lambda name: f"/usr/bin/{name}") == "podman"
    assert find_builder(which=lambda name: name if name != "podman" else None) == "buildah"
    assert find_builder(which=lambda name: name if name == "docker" else None) == "docker"
    assert find_builder("docker", which=lambda name: name) == "docker"


def test_no_builder_names_what_to_install() -> None:
    with pytest.raises(BuildError, match=r"install podman .*buildah or docker.*--dockerfile-only"):
        find_builder(which=lambda name: None)
    with pytest.raises(BuildError, match=r"--builder docker: docker is not on PATH"):
        find_builder("docker", which=lambda name: None)


@pytest.mark.parametrize(
    ("builder", "head"),
    [
        pytest.param("podman", ["podman", "--runtime", "runc", "build"], id="podman"),
        pytest.param("buildah", ["buildah", "build", "--runtime", "runc"], id="buildah"),
    ],
)
def test_build_command_passes_the_runtime(builder: str, head: list[str]) -> None:
    argv = build_command(
        builder, tag="t:1", dockerfile_path=Path("/w/D"), context=Path("/c"), runtime="runc"
    )
    assert argv == [*head, "-t", "t:1", "-f", "/w/D", "/c"]


def test_docker_has_no_runtime_option() -> None:
    argv = build_command("docker", tag="t", dockerfile_path=Path("D"), context=Path("c"))
    assert argv == ["docker", "build", "-t", "t", "-f", "D", "c"]
    with pytest.raises(BuildError, match="--runtime"):
        build_command("docker", tag="t", dockerfile_path=Path("D"), context=Path("c"), runtime="x")


# ---------------------------------------------------------------- the command


def fake_builder(folder: Path, name: str, code: int = 0) -> Path:
    """A stand-in builder on PATH that records its arguments, env and the Dockerfile."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "if args[:2] == ['image', 'exists']:\n"
        "    sys.exit(0)\n"
        "dockerfile = pathlib.Path(args[args.index('-f') + 1])\n"
        "context = pathlib.Path(args[-1])\n"
        "record = {'args': args, 'dockerfile': dockerfile.read_text(),\n"
        "          'context': sorted(str(p.relative_to(context)) for p in context.rglob('*')),\n"
        "          'conf': os.environ.get('CONTAINERS_CONF')}\n"
        f"pathlib.Path({str(folder / 'record.json')!r}).write_text(json.dumps(record))\n"
        f"sys.exit({code})\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder / "record.json"


def test_build_runs_the_builder_on_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    record = fake_builder(tmp_path / "bin", "podman")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CONTAINERS_CONF", "/etc/x.conf")
    code = main(["build", str(FIXTURE), "-t", "localhost/t:1", "--runtime", "runc",
                 "--network", "host"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    seen = json.loads(record.read_text())
    assert seen["args"][:5] == ["--runtime", "runc", "build", "--network", "host"]
    assert seen["args"][-1] == str(FIXTURE)  # no wheels: the folder itself is the context
    assert seen["dockerfile"].startswith("# Written by `infergraph build`")
    assert "FROM localhost/infergraph:" in seen["dockerfile"]
    assert seen["conf"] == "/etc/x.conf"  # the builder's own settings pass through
    err = capsys.readouterr().err
    assert "infergraph build: running: podman --runtime runc build" in err
    assert "infergraph build: built localhost/t:1" in err


def test_build_with_wheels_stages_a_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    folder = model_folder(tmp_path, **{"requirements.txt": "tiny\n"})
    (folder / ".git").mkdir()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "tiny-1.0-py3-none-any.whl").write_bytes(b"zip")
    record = fake_builder(tmp_path / "bin", "docker")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    code = main(["build", str(folder), "-t", "m:1", "--wheels", str(wheels), "--base", "b:1"])
    assert code == 0, capsys.readouterr().err
    seen = json.loads(record.read_text())
    assert seen["args"][0] == "build"
    assert "wheels/tiny-1.0-py3-none-any.whl" in seen["context"]
    assert "model/Model.py" in seen["context"]
    assert not any(p.startswith("model/.git") for p in seen["context"])
    assert "--no-index --find-links" in seen["dockerfile"]


def test_a_failing_builder_is_exit_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_builder(tmp_path / "bin", "podman", code=125)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert main(["build", str(FIXTURE), "-t", "t:1"]) == 1
    assert "the builder failed (exit status 125)" in capsys.readouterr().err


def test_dockerfile_only_prints_and_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no builder at all: none is needed
    assert main(["build", str(FIXTURE), "--dockerfile-only", "--base", "b:2"]) == 0
    out = capsys.readouterr().out
    assert "FROM b:2\n" in out
    assert out == dockerfile(read_model_folder(FIXTURE), "b:2")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["build", "/no/such/folder", "-t", "x"], ["no such folder"], id="folder"),
        pytest.param(["build", str(FIXTURE)], ["-t IMAGE"], id="no-tag"),
        pytest.param(["build", str(FIXTURE), "--env", "X"], ["KEY=VALUE"], id="bad-env"),
        pytest.param(
            ["build", str(FIXTURE / ".s2i"), "-t", "x"], ["does not exist"], id="no-environment"
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    args: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("infergraph build: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in err


def test_no_builder_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["build", str(FIXTURE), "-t", "x"]) == 2
    err = capsys.readouterr().err
    assert "no image builder found on PATH: install podman" in err


def test_dockerfile_only_wheels_must_be_in_the_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = model_folder(tmp_path, **{"requirements.txt": "tiny\n"})
    (folder / "wheelhouse").mkdir()
    assert (
        main(["build", str(folder), "--dockerfile-only", "--wheels", str(folder / "wheelhouse")])
        == 0
    )
    assert "COPY wheelhouse/ /tmp/infergraph-wheels/" in capsys.readouterr().out
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert main(["build", str(folder), "--dockerfile-only", "--wheels", str(outside)]) == 2
    assert "must be a folder inside DIR" in capsys.readouterr().err
