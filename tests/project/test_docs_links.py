"""The docs point only at what is in the repository, and keep saying what is true.

A new user (issue 13) found the README linking to a file outside the repository, docs naming
a model folder that is not shipped and an example that nothing mentioned, a "not supported
yet" for servers that are supported, and a per-hop figure that the demo seemed to contradict.
These checks read README.md, docs/*.md and the examples' READMEs, with no network and no
server, so a moved file or a renamed command breaks a test rather than a reader.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infergraph.cli.main import build_parser
from infergraph.servers import PREPACKAGED_CLASSES
from tests.helpers.procs import clean_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*/README.md")])
DOC_IDS = [str(doc.relative_to(ROOT)) for doc in DOCS]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# a repository path: what a reader would open or pass to a command from the repository root
REPO_PATH = re.compile(
    r"(?<![\w./-])(?:\./)?((?:examples|docs|tests|scripts|deploy|src|bench|tools)/[\w.*/-]*)"
)
PARENT_PATH = re.compile(r"(?<![\w./-])\.\./[\w./-]*")
COMMAND = re.compile(r"(?<![\w./-])infergraph ([a-z][\w-]*)")
DOTTED = re.compile(r"(?<![\w./-])infergraph(?:\.[A-Za-z_]\w*)+")
NOT_PYTHON = {
    "infergraph.io",
    "infergraph.access",
    "infergraph.node.output",
}  # the API group; loggers
NOT_PYTHON |= {  # span attributes (docs/tracing.md)
    "infergraph.node.name",
    "infergraph.node.type",
    "infergraph.node.method",
    "infergraph.predictor",
    "infergraph.route",
}


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _code(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a Markdown text."""
    return [*FENCE.findall(text), *SPAN.findall(_prose(text))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(_prose(doc.read_text())):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def _exists(relative: str) -> bool:
    if "*" in relative:
        return any(ROOT.glob(relative))
    return (ROOT / relative).exists()


def _links(doc: Path) -> Iterator[str]:
    yield from LINK.findall(_prose(doc.read_text()))


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_links_stay_in_the_repository_and_reach_what_they_name(doc: Path) -> None:
    wrong = []
    for target in _links(doc):
        if re.match(r"https?://", target):
            continue
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            wrong.append(f"{target}: only http(s) links may leave the repository")
            continue
        path, _, fragment = target.partition("#")
        file = (doc.parent / path) if path else doc
        if not _inside(file):
            wrong.append(f"{target}: outside the repository")
        elif not file.exists():
            wrong.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in _anchors(file):
            wrong.append(f"{target}: {file.name} has no heading #{fragment}")
    assert not wrong, wrong


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_repository_paths_in_code_exist(doc: Path) -> None:
    code = _code(doc.read_text())
    missing = sorted(
        {path for block in code for path in REPO_PATH.findall(block) if not _exists(path)}
    )
    assert not missing, f"{doc.name} names paths the repository does not have: {missing}"
    outside = sorted({path for block in code for path in PARENT_PATH.findall(block)})
    assert not outside, f"{doc.name} names paths outside the repository: {outside}"


def _subcommands() -> set[str]:
    actions = build_parser()._actions
    (commands,) = (a for a in actions if isinstance(a, argparse._SubParsersAction))
    return set(commands.choices)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_every_infergraph_command_in_the_docs_exists(doc: Path) -> None:
    named = {name for block in _code(doc.read_text()) for name in COMMAND.findall(block)}
    unknown = sorted(named - _subcommands())
    assert not unknown, f"{doc.name} names infergraph commands that do not exist: {unknown}"


RESOLVE = """
import importlib, json, sys
missing = []
for name in json.loads(sys.argv[1]):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            missing.append(name)
        break
    else:
        missing.append(name)
print(json.dumps(missing))
"""


def test_every_python_name_in_the_docs_exists() -> None:
    """``infergraph.kube.render``, ``infergraph.servers.SKLearnServer``, ...: importable, in a
    fresh interpreter so that importing them leaves this test session as it was."""
    names = sorted(
        {
            name
            for doc in DOCS
            for block in _code(doc.read_text())
            for name in DOTTED.findall(block)
            if name not in NOT_PYTHON
        }
    )
    assert "infergraph.kube.render" in names
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], "the docs name Python objects that do not exist"


# ---------------------------------------------------------------- what issue 13 found


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", " ".join(_prose(text).split()))


def test_render_exists_as_the_docs_name_it() -> None:
    from infergraph.kube.render import render

    assert "render" in _subcommands()
    assert callable(render)
    text = "\n".join(doc.read_text() for doc in DOCS)
    assert not re.search(r"(?<![\w.])kube\.render", text), "write infergraph.kube.render"


def test_graph_docs_say_prepackaged_servers_run() -> None:
    graph = (ROOT / "docs" / "graph.md").read_text()
    refusals = [
        s
        for s in _sentences(graph)
        if "prepackaged" in s.lower() and re.search(r"not supported|refused|unsupported", s)
    ]
    assert not refusals, refusals
    assert "(servers.md)" in graph
    servers = (ROOT / "docs" / "servers.md").read_text()
    table = set(re.findall(r"^\| `([A-Z_]+_SERVER)` \| `(\w+Server)` \|", servers, re.MULTILINE))
    assert table == {(name, cls.__name__) for name, cls in PREPACKAGED_CLASSES.items()}
    for name in PREPACKAGED_CLASSES:
        assert name in graph, f"docs/graph.md does not name {name}"


def test_the_license_the_readme_names_is_shipped() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "Apache-2.0" in readme
    assert "(LICENSE)" in readme
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0" in license_text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_architecture_doc_names_every_layer_of_the_contract() -> None:
    contract = (ROOT / ".importlinter").read_text()
    layers = contract.split("layers =", 1)[1].split("exhaustive", 1)[0]
    packages = {name for line in layers.split() for name in line.split("|") if name}
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    missing = sorted(name for name in packages if f"`{name}`" not in architecture)
    assert not missing, f"docs/architecture.md leaves out the layers {missing}"
    assert "docs/architecture.md" in contract


def test_every_example_is_referenced_from_the_docs() -> None:
    text = "\n".join(doc.read_text() for doc in DOCS if doc.parent.parent != ROOT / "examples")
    for example in sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()):
        assert f"examples/{example.name}" in text, f"no doc mentions examples/{example.name}"


def test_v2_doc_serves_a_model_the_repository_ships() -> None:
    v2 = (ROOT / "docs" / "v2.md").read_text()
    first = FENCE.findall(v2)[0]
    assert "--path examples/iris" in first
    assert "./iris" not in v2
    uris = re.findall(r'"model_uri",\s*"value":\s*"([^"]+)"', v2)
    assert all(_exists(uri) for uri in uris), uris


def _hop_cpu_in_results() -> str:
    results = (ROOT / "bench" / "RESULTS.md").read_text()
    match = re.search(r"^\| in process \| CPU per hop \(c32\) \| ([\d.]+) µs \|", results, re.M)
    assert match, "bench/RESULTS.md has no in-process CPU per hop row"
    assert "`.venv/bin/python bench/graph.py --write-results`" in results
    return match.group(1)


def test_readme_quotes_the_hop_cost_bench_results_measured() -> None:
    figure = _hop_cpu_in_results()
    about = f"about {round(float(figure))} µs of CPU"
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert about in readme and f"{figure} µs in `bench/RESULTS.md`" in readme
    assert "`bench/graph.py --write-results`" in readme
    assert about in " ".join((ROOT / "docs" / "graph.md").read_text().split())


# ---------------------------------------------------------------- examples/iris, as documented


def _iris() -> Any:
    pytest.importorskip("sklearn")
    import importlib.util

    path = ROOT / "examples" / "iris" / "IrisClassifier.py"
    spec = importlib.util.spec_from_file_location("IrisClassifier", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.IrisClassifier()


async def test_iris_example_answers_as_the_readme_and_v2_doc_show() -> None:
    from infergraph import component_app

    transport = httpx.ASGITransport(app=component_app(_iris()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        seldon = await client.post(
            "/api/v1.0/predictions", json={"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
        )
        v2 = await client.post(
            "/v2/models/IrisClassifier/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
                ]
            },
        )
    assert seldon.status_code == 200, seldon.text
    body = seldon.json()
    assert body["meta"]["tags"] == {"model": "iris-logreg"}
    assert body["meta"]["metrics"] == [{"type": "COUNTER", "key": "iris_predictions", "value": 1}]
    assert body["data"]["names"] == ["setosa", "versicolor", "virginica"]
    assert body["data"]["ndarray"][0][0] == pytest.approx(0.98, abs=0.01)
    assert v2.status_code == 200, v2.text
    answer = v2.json()
    assert answer["model_name"] == "IrisClassifier"
    (output,) = answer["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("output-0", [1, 3], "FP64")
    assert output["data"] == pytest.approx(body["data"]["ndarray"][0])


def test_the_readmes_first_screen_shows_a_graph() -> None:
    """What infergraph is, then a picture of a graph (a file in the repository), then the
    two commands."""
    text = (ROOT / "README.md").read_text()
    first = text[: text.index("## Two commands")]
    images = re.findall(r"!\[[^\]]+\]\(([^()\s]+)\)", first)
    assert images, "no picture before the two commands"
    assert all((ROOT / image).is_file() for image in images), images
    assert "inference graphs" in first
