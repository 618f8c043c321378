"""Which folder a container's code comes from, and the env its s2i image would carry."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from infergraph.errors import LoadError
from infergraph.graph.nodes import local_factory, plan_processes
from infergraph.graph.plan import compile_deployment
from infergraph.graph.spec import Container, load_deployments
from infergraph.graph.spec.model_sources import (
    ModelSources,
    image_builtin,
    image_name,
    read_environment_file,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "s2i"
DOUBLER, ADDER = FIXTURES / "doubler", FIXTURES / "adder"


def container(image: str | None, **env: str) -> Container:
    return Container.model_validate(
        {"name": "c", "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}
    )


@pytest.mark.parametrize(
    ("image", "name"),
    [
        pytest.param("acme/iris:1.0", "acme/iris", id="tag"),
        pytest.param("acme/iris", "acme/iris", id="no-tag"),
        pytest.param("host:5000/acme/iris:1.0", "host:5000/acme/iris", id="registry-port"),
        pytest.param("host:5000/acme/iris", "host:5000/acme/iris", id="registry-port-no-tag"),
        pytest.param("acme/iris:1.0@sha256:abc", "acme/iris", id="digest"),
    ],
)
def test_image_name(image: str, name: str) -> None:
    assert image_name(image) == name


def test_environment_file_is_read_as_s2i_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "environment"
    path.write_text('# comment\n\nMODEL_NAME=pkg.Model\n  SERVICE_TYPE = ROUTER \nX=a=b\nQ="1"\n')
    assert read_environment_file(path) == {
        "MODEL_NAME": "pkg.Model",
        "SERVICE_TYPE": "ROUTER",
        "X": "a=b",
        "Q": '"1"',
    }


def test_folder_exact_image_first_then_every_tag() -> None:
    sources = ModelSources.of(
        "default", {"acme/iris:2.0": "iris-2", "acme/iris": "iris", "acme/wine:1": "wine"}
    )
    assert sources.folder("acme/iris:2.0") == (Path("iris-2"), True)
    assert sources.folder("acme/iris:1.0") == (Path("iris"), True)
    assert sources.folder("acme/wine:2") == (Path("default"), False)
    assert sources.folder(None) == (Path("default"), False)
    assert sources.unused({"acme/iris:1.0"}) == ["acme/iris:2.0", "acme/wine:1"]


def test_the_folder_environment_fills_in_and_the_container_env_wins() -> None:
    source = ModelSources.of(DOUBLER).resolve(container("acme/doubler:1.0", SERVICE_TYPE="ROUTER"))
    assert source.env == {
        "MODEL_NAME": "Doubler",
        "SERVICE_TYPE": "ROUTER",  # the container's, over the file's MODEL
        "PERSISTENCE": "0",
        "API_TYPE": "REST",
    }
    assert source.environment_file == DOUBLER / ".s2i" / "environment"
    assert source.folder == DOUBLER and not source.mapped


def test_a_container_model_name_is_used_as_is() -> None:
    own = container("acme/doubler:1.0", MODEL_NAME="Doubler.Tripler")
    source = ModelSources.of(DOUBLER).resolve(own)
    assert source.env == {"MODEL_NAME": "Doubler.Tripler"}
    assert source.environment_file is None


def test_seldon_router_images_stay_built_in_unless_mapped(tmp_path: Path) -> None:
    image = "seldonio/mab_epsilon_greedy:1.18.0"
    assert image_builtin(image) == "EPSILON_GREEDY"
    source = ModelSources.of(DOUBLER).resolve(container(image))
    assert source.builtin == "EPSILON_GREEDY" and not source.model_name
    mapped = ModelSources.of(tmp_path, {"seldonio/mab_epsilon_greedy": DOUBLER})
    assert mapped.resolve(container(image)).model_name == "Doubler"


def test_no_model_name_from_anywhere(tmp_path: Path) -> None:
    source = ModelSources.of(tmp_path).resolve(container("acme/x:1"))
    assert source.model_name == "" and source.builtin is None


def test_a_malformed_line_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".s2i").mkdir()
    (tmp_path / ".s2i" / "environment").write_text("MODEL_NAME=A\nexport B\n")
    with pytest.raises(LoadError, match=r"environment:2: 'export B' is not a KEY=VALUE line"):
        ModelSources.of(tmp_path).resolve(container("acme/x:1"))


def test_processes_run_each_node_in_its_own_folder() -> None:
    deployment = load_deployments(FIXTURES / "chain.yaml")[0]
    sources = ModelSources.of(".", {"acme/doubler:1.0": DOUBLER, "acme/adder": ADDER})
    ports = iter(range(20000, 20100))
    specs = {spec.node: spec for spec in plan_processes(deployment, lambda: next(ports), sources)}
    assert {name: spec.env["MODEL_NAME"] for name, spec in specs.items()} == {
        "double": "Doubler",
        "add": "Adder",
        "triple": "Doubler.Tripler",
    }
    assert specs["add"].folder == str(ADDER.resolve())
    assert specs["double"].folder == specs["triple"].folder == str(DOUBLER.resolve())


def test_two_folders_with_one_module_name_are_refused_in_one_process(tmp_path: Path) -> None:
    module = f"clash_{uuid.uuid4().hex}"  # not imported by any other test
    for folder in ("one", "two"):
        (tmp_path / folder / ".s2i").mkdir(parents=True)
        (tmp_path / folder / ".s2i" / "environment").write_text(f"MODEL_NAME={module}.M\n")
        (tmp_path / folder / f"{module}.py").write_text(
            "class M:\n    def predict(self, X, names):\n        return X\n"
        )
    manifest = tmp_path / "two.yaml"
    manifest.write_text(
        (FIXTURES / "chain.yaml").read_text().replace("acme/adder:2.3", "acme/other:1")
    )
    sources = ModelSources.of(
        tmp_path / "one", {"acme/other": tmp_path / "two", "acme/doubler": tmp_path / "one"}
    )
    with pytest.raises(LoadError, match=f"node 'add': its class '{module}.M' is in module"):
        compile_deployment(load_deployments(manifest)[0], local_factory(sources=sources))


def test_processes_find_a_relative_model_path_from_the_serve_folder(tmp_path: Path) -> None:
    manifest = tmp_path / "iris.yaml"
    manifest.write_text(
        "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\n"
        "metadata: {name: iris}\nspec:\n  predictors:\n  - name: default\n    graph:\n"
        "      name: clf\n      implementation: SKLEARN_SERVER\n      modelUri: models/iris\n"
    )
    ports = iter(range(20000, 20100))
    (spec,) = plan_processes(load_deployments(manifest)[0], lambda: next(ports), ModelSources())
    (uri,) = [p["value"] for p in orjson.loads(spec.env["PREDICTIVE_UNIT_PARAMETERS"])]
    assert uri == str(Path("models/iris").absolute())
    assert spec.folder == ""  # a prepackaged server runs in the --path folder
