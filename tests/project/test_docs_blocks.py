"""Every fenced block in README.md, docs/ and the examples' READMEs runs as written, or says why.

Each block is claimed by exactly one way of checking it (``tests/helpers/doc_blocks.py`` lists the
markers). Unmarked blocks run here, each in a fresh folder that holds a link to every top-level
entry of the repository (so ``examples/iris`` resolves) and the files the doc defined above the
block (``# MyModel.py: ...``):

- ``bash``/``sh``: run by bash, command by command. The full-line comments right under a
  command are what it prints, ``...`` standing for anything (after a blank line, a comment is
  prose); a ``curl`` with nothing shown must answer, and not with an error. An ``infergraph
  microservice`` or ``infergraph serve`` command is started as a server instead, on free
  ports: its documented ports (9000, 5000, 6000; 8000, 5001) are given as ``--http-port``/
  ``--grpc-port``/``--metrics-port`` flags, the commands after it have ``localhost:9000``
  (and so on) rewritten to match, and they run once its ``/ready`` answers 200. In
  docs/servers.md the bucket ``s3://models`` is a moto S3 server (see :func:`docs_bucket`);
  ``pip install`` is not run, but the extras it names must exist;
- ``console``: each ``$ command`` runs and prints (stdout and stderr) the lines under it;
- ``python``: runs as a program and exits 0;
- ``yaml``: parses; a SeldonDeployment or GraphDeployment (or a predictor's ``graph:``) has no
  problem ``infergraph validate`` reports; other Kubernetes kinds pass their official schema.

Every ``infergraph`` command in any block parses with infergraph's own command line, whatever
its marker, so a renamed flag breaks this test rather than a reader.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import itertools
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infergraph.cli.main import build_parser
from tests.helpers import model_stores
from tests.helpers.doc_blocks import ROOT, Block, all_blocks, shown, wildcard
from tests.helpers.model_stores import CREDENTIALS
from tests.helpers.ports import HeldPorts
from tests.helpers.procs import PYTHON, Service, clean_env

BLOCKS = all_blocks()
s3_endpoint = model_stores.s3_endpoint  # the moto S3 server docs/servers.md's bucket is on
SERVER = re.compile(r"^infergraph (microservice|serve)\b")
# the ports the docs show, by command, and the flags that move them
PORTS = {
    "microservice": {"9000": "--http-port", "5000": "--grpc-port", "6000": "--metrics-port"},
    "serve": {"8000": "--http-port", "5001": "--grpc-port"},
}
# what a bash block may run here; anything else needs a marker
RUNNABLE = re.compile(r"^(infergraph|curl|grep|echo|cat|pip install|[A-Z0-9_]+=)")


def ids(blocks: list[Block]) -> list[str]:
    return [b.where for b in blocks]


def commands(block: Block) -> list[tuple[str, str | None]]:
    """Each command of a bash block (continuations joined) and the output shown under it."""
    out: list[tuple[str, str | None]] = []
    pending = ""
    printing = False  # comment lines now are the last command's output, not prose
    for line in block.lines:
        if pending:
            pending += "\n" + line
        elif line.lstrip().startswith("#"):
            if printing:
                command, shown = out[-1]
                text = line.strip().removeprefix("#").strip()
                out[-1] = (command, (shown or "") + text)
            continue
        elif line.strip():
            pending = line
        else:
            printing = False
        if pending and not pending.endswith("\\"):
            out.append((pending, None))
            pending = ""
            printing = True
    return out


def infergraph_argv(command: str) -> list[str] | None:
    """``infergraph ...`` up to a pipe or redirection, as argv without the program."""
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    words = words[next((i for i, w in enumerate(words) if "=" not in w), len(words)) :]
    if not words or words[0] != "infergraph":
        return None
    argv = []
    for word in words[1:]:
        if word in ("|", ">", "&&", ";"):
            break
        argv.append(word)
    return argv


# ---------------------------------------------------------------- every block is claimed


def check_run_by(block: Block, test_file: str) -> None:
    """Each command of a block ``# run by tests/FILE.py`` is one that FILE runs."""
    source = (ROOT / test_file).read_text()
    installed = (ROOT / "scripts" / "install-services.sh").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for command, _ in commands(block):
        words = shlex.split(command, comments=True)
        if words[:2] == ["apt-get", "install"]:
            missing = [p for p in words[2:] if not p.startswith("-") and p not in installed]
            assert not missing, f"{block.where}: scripts/install-services.sh lacks {missing}"
        elif "pytest" in words:
            assert any(test_file.startswith(w) for w in words), (block.where, command)
        elif words[0] == "bash" or words[0].endswith("python"):
            assert Path(words[1]).name in source, f"{block.where}: {test_file} never runs {command}"
        elif words[0] == "infergraph":
            assert f'"{words[1]}"' in source, f"{block.where}: {test_file} never runs {command}"
        elif words[0] == "make":  # a target of the Makefile; `make test` runs every test
            assert re.search(rf"^{words[1]}:", makefile, re.M), (block.where, command)
            assert words[1] == "test" or "infergraph." + words[1] in source, (block.where, command)
        else:
            pytest.fail(f"{block.where}: {test_file} is said to run '{command}'; say how")


@pytest.mark.parametrize("block", BLOCKS, ids=ids(BLOCKS))
def test_each_block_is_claimed(block: Block) -> None:
    how = (
        "start it with '# needs a cluster', '# needs Docker', '# needs the network', "
        "'# run by tests/FILE.py', "
        "'# with your own files', '# a fragment' (python) or '# FILE.py: ...' (a file later "
        "blocks use); or put '<!-- run by tests/FILE.py -->' on the line above a block without "
        "comments, in a test that compares it with doc_blocks.shown()"
    )
    marker = block.marker
    assert not (marker and block.label), f"{block.where}: a marker and a label; keep one"
    if block.label:
        test_file = block.label.removeprefix("run by ")
        call = f'shown("{block.doc}", "{test_file}")'
        assert call in (ROOT / test_file).read_text(), (
            f"{block.where}: {block.label}, but that file never compares it: call {call} there"
        )
    elif block.test_file:
        check_run_by(block, block.test_file)
    elif marker and marker.group("file"):
        later = [b.text for b in BLOCKS if b.doc == block.doc and b.line > block.line]
        name = Path(marker.group("file")).stem
        assert any(name in text for text in later), f"{block.where}: no later block uses {name}"
    elif block.claim == "run here":
        assert block.lang in ("bash", "sh", "console", "python", "yaml"), f"{block.where}: {how}"
        if block.lang in ("bash", "sh"):
            for command, _ in commands(block):
                assert RUNNABLE.match(command), f"{block.where}: cannot run {command!r}; {how}"


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        pytest.param("", "some output\n", id="output"),
        pytest.param("bash", "kubectl get pods\n", id="command"),
        pytest.param("toml", "[tool]\n", id="language"),
    ],
)
def test_a_new_block_without_a_marker_says_how_to_mark_it(lang: str, text: str) -> None:
    block = Block(doc="docs/new.md", line=3, lang=lang, text=text, label=None)
    with pytest.raises(AssertionError, match=r"docs/new.md:3: .*'# needs a cluster'.*<!-- run by"):
        test_each_block_is_claimed(block)


def test_the_docs_have_blocks_of_every_kind() -> None:
    claims = {b.claim for b in BLOCKS}
    assert {"run here", "needs a cluster", "a fragment"} <= claims, claims
    assert len(BLOCKS) >= 50


DOCUMENTED = [
    (block, command)
    for block in BLOCKS
    if block.lang in ("bash", "sh")
    for command, _ in commands(block)
    if infergraph_argv(command) is not None
]


@pytest.mark.parametrize(
    ("block", "command"), DOCUMENTED, ids=[f"{b.where}-{c.split()[1]}" for b, c in DOCUMENTED]
)
def test_every_infergraph_command_parses(
    block: Block, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = infergraph_argv(command)
    assert argv is not None
    if block.claim == "with your own files":  # the reader's folders: made up here
        monkeypatch.chdir(tmp_path)
        for flag, value in itertools.pairwise(argv):
            if flag in ("--path", "--image"):
                (tmp_path / value.rsplit("=", 1)[-1]).mkdir(parents=True, exist_ok=True)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{block.where}: '{command}' does not parse (exit {exc.code})")
    assert hasattr(args, "command"), command


PIPED = [(block, command) for block, command in DOCUMENTED if "| kubectl" in command]


@pytest.mark.parametrize(("block", "command"), PIPED, ids=[b.where for b, _ in PIPED])
def test_what_is_piped_to_kubectl_runs_here(block: Block, command: str) -> None:
    """``infergraph ... | kubectl ...`` needs a cluster only after the pipe."""
    argv = infergraph_argv(command)
    assert argv is not None
    result = subprocess.run(
        [PYTHON, "-m", "infergraph", *argv],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where}: {result.stderr}"
    assert "apiVersion:" in result.stdout


# ---------------------------------------------------------------- running them


def folder_for(block: Block, tmp_path: Path) -> Path:
    """A folder like the repository root, holding the files the doc defined above ``block``."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    for earlier in BLOCKS:
        marker = earlier.marker
        if earlier.doc == block.doc and earlier.line < block.line and marker and marker["file"]:
            (tmp_path / marker.group("file")).write_text(earlier.text)
    return tmp_path


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return clean_env({"PYTHON": PYTHON, "PYTHONPATH": str(ROOT / "src"), **(extra or {})})


# the docs' `infergraph` is this interpreter's
PRELUDE = 'infergraph() { "$PYTHON" -m infergraph "$@"; }\n'
SEPARATOR = "@@@ next command @@@"


def check_pip_install(block: Block, command: str) -> None:
    """Not run (the test environment has every extra): the extras it names must exist."""
    extras = re.findall(r"infergraph\[([\w,]+)\]", command)
    declared = re.findall(r"^([a-z0-9]+) = \[", (ROOT / "pyproject.toml").read_text(), re.M)
    for name in ",".join(extras).split(","):
        assert name in declared, f"{block.where}: pyproject.toml has no extra {name!r}"


def run_commands(block: Block, folder: Path, steps: list[tuple[str, str | None]], at: At) -> None:
    script = PRELUDE + "set -eo pipefail\n"
    for command, _ in steps:
        if command.startswith("pip install"):
            check_pip_install(block, command)
            command = ":"
        for shown_port, port in at.ports.items():
            command = command.replace(f"localhost:{shown_port}", f"localhost:{port}")
        for shown_url, url in at.urls.items():
            command = command.replace(shown_url, url)
        script += f"{command}\necho; echo '{SEPARATOR}'\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env(at.env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where}: exit {result.returncode}\n{result.stderr}"
    outputs = result.stdout.split(SEPARATOR + "\n")
    for (command, expected), printed in zip(steps, outputs, strict=False):
        if expected is None and command.startswith("curl") and "> /dev/null" not in command:
            # nothing shown: an answer all the same, and not an error (curl -s exits 0 on 4xx)
            assert printed.strip(), f"{block.where}: `{command}` printed nothing"
            assert not re.search(r'"(FAILURE|error)"', printed), f"{block.where}: {printed}"
        if expected is not None:
            assert wildcard(expected).fullmatch(printed.strip()), (
                f"{block.where}: `{command}` printed\n{printed.strip()}\nthe docs show\n{expected}"
            )


@dataclass
class At:
    """Where a block's commands run: the ports and URLs the docs show, and the real ones."""

    ports: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def start_server(block: Block, folder: Path, command: str, at: At) -> Service:
    argv = infergraph_argv(command)
    assert argv is not None
    flags = PORTS[argv[0]]
    held = HeldPorts(len(flags))
    chosen = dict(zip(flags, map(str, held.ports), strict=True))
    for shown_port, flag in flags.items():
        argv += [flag, chosen[shown_port]]
    logs = folder / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [PYTHON, "-m", "infergraph", *argv], cwd=folder, env=env(at.env),
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip
    at.ports = chosen
    ports = [int(chosen[p]) for p in flags]
    return Service(proc, ports[0], ports[1], ports[-1], logs, held=held)


def run_bash(block: Block, folder: Path, at: At) -> None:
    steps = commands(block)
    servers: list[Service] = []
    try:
        pending: list[tuple[str, str | None]] = []
        for command, expected in steps:
            if SERVER.match(command):
                run_commands(block, folder, pending, at)
                pending = []
                service = start_server(block, folder, command, at)
                servers.append(service)
                service.wait_ready(60)
            else:
                pending.append((command, expected))
        run_commands(block, folder, pending, at)
    finally:
        for service in servers:
            service.kill()


def run_console(block: Block, folder: Path) -> None:
    transcript: list[tuple[str, list[str]]] = []
    for line in block.lines:
        if line.startswith("$ "):
            transcript.append((line[2:], []))
        else:
            transcript[-1][1].append(line)
    for command, expected in transcript:
        result = subprocess.run(
            ["bash", "-c", PRELUDE + command],
            cwd=folder, env=env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        printed = (result.stdout + result.stderr).strip()
        assert "Traceback" not in printed, f"{block.where}: `{command}`:\n{printed}"
        assert wildcard("\n".join(expected).strip()).fullmatch(printed), (
            f"{block.where}: `{command}` printed\n{printed}\nthe docs show\n" + "\n".join(expected)
        )


def run_python(block: Block, folder: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-c", block.text], cwd=folder, env=env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.where}: exit {result.returncode}\n{result.stderr}"


def check_yaml(block: Block, folder: Path) -> None:
    from infergraph.graph.spec import load_documents, validate

    documents = list(yaml.safe_load_all(block.text))
    assert documents and all(isinstance(d, dict) for d in documents), block.where
    for document in documents:
        kind = document.get("kind")
        if "graph" in document and kind is None:  # a predictor's graph, shown alone
            document = {
                "apiVersion": "machinelearning.seldon.io/v1",
                "kind": "SeldonDeployment",
                "metadata": {"name": "example"},
                "spec": {"predictors": [{"name": "default", **document}]},
            }
            kind = "SeldonDeployment"
        if kind in ("SeldonDeployment", "GraphDeployment"):
            path = folder / "deployment.yaml"
            path.write_text(yaml.safe_dump(document))
            (deployment,) = load_documents(str(path))
            problems = validate(deployment)
            assert not problems, f"{block.where}: {problems}"
        elif kind == "ConfigMap":
            import kubernetes_validate

            kubernetes_validate.validate(document, "1.33", strict=True)
        elif kind is not None:  # a custom resource of another project: its required fields
            assert {"apiVersion", "kind", "metadata", "spec"} <= set(document), block.where
        else:  # a model's metadata.yaml
            from infergraph.components.metadata import validate_metadata

            validate_metadata(document)


def docs_bucket(endpoint: str) -> At:
    """The bucket ``s3://models`` of docs/servers.md, on a moto S3 server: the iris classifier
    saved with skops (a remote pickle is refused unless trusted) under the keys the docs name.
    ``http://minio:9000`` in a command, and AWS_ENDPOINT_URL_S3, become the moto server."""
    import boto3
    import skops.io

    from tests.helpers.model_files import classifier

    client = boto3.client("s3", endpoint_url=endpoint, **BOTO_CREDENTIALS)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="models")
    body = skops.io.dumps(classifier())
    for prefix in ("sklearn/iris", "iris"):
        client.put_object(Bucket="models", Key=f"{prefix}/model.skops", Body=body)
    return At(
        urls={"http://minio:9000": endpoint},
        env={**CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint},
    )


BOTO_CREDENTIALS = {
    "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
}
RUN_HERE = [b for b in BLOCKS if b.claim == "run here"]


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_HERE, ids=ids(RUN_HERE))
def test_each_block_runs_as_shown(
    block: Block, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    folder = folder_for(block, tmp_path)
    at = At()
    defined = [f.read_text() for f in folder.iterdir() if f.is_file() and not f.is_symlink()]
    if block.lang in ("bash", "sh") and "s3://" in "".join([block.text, *defined]):
        at = docs_bucket(request.getfixturevalue("s3_endpoint"))
    if block.lang in ("bash", "sh"):
        run_bash(block, folder, at)
    elif block.lang == "console":
        run_console(block, folder)
    elif block.lang == "python":
        run_python(block, folder)
    elif block.lang == "yaml":
        check_yaml(block, folder)


# ---------------------------------------------------------------- fragments


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def resolve(node: ast.expr, names: dict[str, Any]) -> Any:
    """The object ``node`` names, or None for the reader's own variables."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = resolve(node.value, names)
        if owner is None:
            return None
        assert hasattr(owner, node.attr), f"{owner!r} has no attribute {node.attr!r}"
        return getattr(owner, node.attr)
    return None


FRAGMENTS = [b for b in BLOCKS if b.claim == "a fragment"]


@pytest.mark.parametrize("block", FRAGMENTS, ids=ids(FRAGMENTS))
def test_each_fragment_names_what_exists(block: Block) -> None:
    """A fragment uses the reader's objects; what it imports and calls must exist as written."""
    tree = ast.parse(block.text)
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block.where}: {node.module}.{alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name] = importlib.import_module(alias.name)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            made = resolve(node.value.func, names)
            for target in node.targets:
                if isinstance(target, ast.Name) and inspect.isclass(made):
                    names[target.id] = made  # an instance: its methods are the class's
    checked = 0
    for call in calls(tree):
        function = resolve(call.func, names)
        if function is None:
            continue
        positional = [None] * sum(not isinstance(a, ast.Starred) for a in call.args)
        keywords = {k.arg: None for k in call.keywords if k.arg is not None}
        signature = inspect.signature(function)
        if inspect.isclass(function) or isinstance(call.func, ast.Attribute):
            positional = [None, *positional] if "self" in signature.parameters else positional
        try:
            signature.bind_partial(*positional, **keywords)
        except TypeError as exc:
            pytest.fail(f"{block.where}: {ast.unparse(call)}: {exc}")
        checked += 1
    assert checked, f"{block.where}: no call of infergraph's was checked"


# ---------------------------------------------------------------- diagrams and synopses


def test_the_readme_layout_names_every_package() -> None:
    (layout,) = shown("README.md", "tests/project/test_docs_blocks.py")
    named = re.findall(r"^  (\w+)/", layout.text, re.M)
    packages = sorted(p.parent.name for p in (ROOT / "src" / "infergraph").glob("*/__init__.py"))
    assert sorted(named) == packages, f"README.md:{layout.line} names {named}, src has {packages}"


def test_the_validate_synopsis_is_its_command_line() -> None:
    (synopsis,) = shown("docs/graph-spec.md", "tests/project/test_docs_blocks.py")
    flags = set(re.findall(r"--[\w-]+", synopsis.text))
    validate = next(
        a.choices["validate"]
        for a in build_parser()._actions
        if isinstance(a.choices, dict) and "validate" in a.choices
    )
    options = {o for a in validate._actions for o in a.option_strings if o.startswith("--")}
    assert flags <= options, f"docs/graph-spec.md:{synopsis.line}: {flags - options}"
    assert {"--skip-other-kinds", "--path", "--image"} <= flags


def test_the_bandit_diagram_is_its_deployment() -> None:
    (diagram,) = shown("examples/bandit/README.md", "tests/project/test_docs_blocks.py")
    drawn = re.findall(r"([\w-]+) +\((\w+)", diagram.text)
    (document,) = yaml.safe_load_all((ROOT / "examples/bandit/deployment.yaml").read_text())

    def walk(node: dict[str, Any]) -> Iterator[tuple[str, str]]:
        yield node["name"], node.get("implementation") or node["type"]
        for child in node.get("children", []):
            yield from walk(child)

    assert drawn == list(walk(document["spec"]["predictors"][0]["graph"]))
