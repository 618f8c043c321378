"""Every command in docs/kubernetes.md is run by a test, or says it needs what CI lacks.

Each ``bash`` block starts with a marker: ``# needs a cluster`` or ``# needs Docker`` (CI has
neither) or ``# run by tests/FILE.py`` (that test runs these commands). Whatever the marker,
every ``infergraph`` command in the docs must parse with infergraph's own command line, so a
renamed flag breaks this test rather than a reader; and an ``infergraph`` command piped into
``kubectl`` runs here, up to the pipe, since it needs no cluster.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from infergraph.cli.main import build_parser

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "kubernetes.md"
MARKERS = re.compile(r"# (needs a cluster|needs Docker|run by (tests/\S+\.py))\s*$")
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[int, list[str]]]:
    text = DOC.read_text()
    out = []
    for match in BLOCK.finditer(text):
        line = text[: match.start()].count("\n") + 1
        out.append((line, match.group(1).rstrip("\n").splitlines()))
    return out


def commands(lines: list[str]) -> list[str]:
    """The command part of each line: comments and blank lines dropped."""
    out = []
    for line in lines[1:]:
        command = line.split(" #", 1)[0].strip()
        if command and not command.startswith("#"):
            out.append(command)
    return out


def infergraph_argv(command: str) -> list[str] | None:
    """``infergraph ...`` up to a pipe or redirection, as argv without the program."""
    words = shlex.split(command)
    if not words or words[0] != "infergraph":
        return None
    argv = []
    for word in words[1:]:
        if word in ("|", ">", "&&", ";"):
            break
        argv.append(word)
    return argv


BLOCKS = blocks()


def test_the_page_has_command_blocks() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize(("line", "lines"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_each_block_says_who_runs_it(line: int, lines: list[str]) -> None:
    marker = MARKERS.match(lines[0]) if lines else None
    assert marker, (
        f"docs/kubernetes.md:{line}: start the block with '# needs a cluster', "
        "'# needs Docker' or '# run by tests/FILE.py'"
    )
    test_file = marker.group(2)
    if test_file is None:
        return
    source = (ROOT / test_file).read_text()
    installed = (ROOT / "scripts" / "install-services.sh").read_text()
    for command in commands(lines):
        words = shlex.split(command)
        if words[:2] == ["apt-get", "install"]:
            missing = [p for p in words[2:] if not p.startswith("-") and p not in installed]
            assert not missing, f"line {line}: scripts/install-services.sh lacks {missing}"
        elif words[0] == "bash":
            assert Path(words[1]).name in source, f"line {line}: {test_file} never runs {words[1]}"
        elif words[0] == "infergraph":
            assert f'"{words[1]}"' in source, f"line {line}: {test_file} never runs {command}"
        elif "pytest" in words:
            assert Path(test_file).name in command
        else:
            pytest.fail(f"line {line}: {test_file} is said to run '{command}'; say how")


DOCUMENTED = [
    (line, command)
    for line, lines in BLOCKS
    for command in commands(lines)
    if infergraph_argv(command) is not None
]


@pytest.mark.parametrize(
    ("line", "command"), DOCUMENTED, ids=[f"line{n}-{c.split()[1]}" for n, c in DOCUMENTED]
)
def test_every_infergraph_command_parses(line: int, command: str) -> None:
    argv = infergraph_argv(command)
    assert argv is not None
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"docs/kubernetes.md:{line}: '{command}' does not parse (exit {exc.code})")
    assert hasattr(args, "command"), command


PIPED = [(line, command) for line, command in DOCUMENTED if "| kubectl" in command]


@pytest.mark.parametrize(("line", "command"), PIPED, ids=[f"line{n}" for n, _ in PIPED])
def test_what_is_piped_to_kubectl_runs_here(line: int, command: str) -> None:
    argv = infergraph_argv(command)
    assert argv is not None
    result = subprocess.run(
        [sys.executable, "-m", "infergraph.cli.main", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docs/kubernetes.md:{line}: {result.stderr}"
    assert "apiVersion:" in result.stdout
