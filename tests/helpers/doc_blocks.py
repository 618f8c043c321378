"""The fenced blocks of README.md, docs/*.md and the examples' READMEs, and how each is checked.

A block says how it is checked with a marker a reader can see and skip:

- a first comment line, in a block whose language has ``#`` comments (bash, sh, python, yaml):
  ``# needs a cluster``, ``# needs Docker``, ``# needs the network`` (CI has none of them),
  ``# run by tests/FILE.py`` (that test runs it), ``# with your own files`` (names the reader
  fills in: its ``infergraph`` commands must parse), ``# a fragment`` (python: its imports and
  calls must resolve), or ``# NAME.EXT: ...`` (the file ``NAME.EXT``, written where the doc's
  later blocks run);
- ``<!-- run by tests/FILE.py -->`` on the line above a block without comments (a log, an
  output, a diagram): that test produces it and compares it with :func:`shown`.

A block with no marker is run by ``tests/project/test_docs_blocks.py``: commands, programs,
manifests, and ``console`` transcripts (``$ command`` and what it prints).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*/README.md")])
COMMENTED = ("bash", "sh", "python", "yaml")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
LABEL = re.compile(r"<!-- (run by (tests/\S+\.py)) -->\s*$")
MARKER = re.compile(
    r"# (?:(needs a cluster|needs Docker|needs the network|with your own files|a fragment"
    r"|run by (?P<test>tests/\S+\.py))(?:: .*)?|(?P<file>[\w.-]+\.(?:py|yaml)): .*)\s*$"
)


@dataclass(frozen=True)
class Block:
    doc: str
    """The file, relative to the repository root."""
    line: int
    """The line of the opening fence."""
    lang: str
    text: str
    """The body, as a reader copies it (indentation removed)."""
    label: str | None
    """``run by tests/FILE.py`` from an HTML comment on the line above, if any."""

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def marker(self) -> re.Match[str] | None:
        if self.lang not in COMMENTED or not self.lines:
            return None
        return MARKER.fullmatch(self.lines[0])

    @property
    def claim(self) -> str:
        """How the block is checked: the marker, the label, or ``run here``."""
        if self.marker:
            return self.marker.group(1) or "a file"
        return self.label or "run here"

    @property
    def test_file(self) -> str | None:
        if self.marker:
            return self.marker.group("test")
        if self.label:
            return self.label.removeprefix("run by ")
        return None


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    out = []
    for match in FENCE.finditer(text):
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        label = LABEL.search(above)
        out.append(
            Block(
                doc=str(doc.relative_to(ROOT)),
                line=text[: match.start()].count("\n") + 1,
                lang=match.group("lang"),
                text=textwrap.dedent(match.group("body")),
                label=label.group(1) if label else None,
            )
        )
    return out


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in blocks(doc)]


def shown(doc: str, test_file: str) -> list[Block]:
    """The blocks of ``doc`` labelled ``<!-- run by TEST_FILE -->``: what the test must print."""
    found = [b for b in blocks(ROOT / doc) if b.test_file == test_file and b.label]
    assert found, f"{doc} has no block labelled <!-- run by {test_file} -->"
    return found


def same_shape(shown_line: str, real_line: str) -> bool:
    """The lines are equal once every number stands for any number, and any spacing for one space.

    A log shows one run's timestamps, ports, pids and durations; another run's differ.
    """

    def shape(line: str) -> str:
        return " ".join(re.sub(r"\d+", "N", line).split())

    return shape(shown_line) == shape(real_line)


def wildcard(shown_text: str) -> re.Pattern[str]:
    """What the docs show, with ``...`` standing for anything (``0.98...``)."""
    return re.compile(".*?".join(re.escape(part) for part in shown_text.split("...")), re.S)
