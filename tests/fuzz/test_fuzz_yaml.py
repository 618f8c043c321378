"""Fuzz what a manifest author can write: the test manifests, mutated as YAML values (types
swapped, huge numbers, tags, dates, aliases, deep nesting, unicode) and as text (punctuation,
indentation, lines dropped, bytes flipped).

What ``infergraph validate`` and ``serve`` run on a file must end in the spec loader's own
errors (:class:`~infergraph.graph.spec.problems.SpecError`, of which ``SpecUnreadable`` is
one), never in a ``TypeError``, ``ValueError`` or ``RecursionError``, and never take long.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path

import yaml

from infergraph.graph.spec import (
    SpecError,
    count_nodes,
    default,
    load_deployments,
    read_documents,
    validate,
)

from .mutate import YAML_RAW, case_count, case_rng, dump_yaml, mutate_yaml_text, seed

CASE_SECONDS = 5.0
MANIFESTS = sorted((Path(__file__).parent.parent / "manifests").rglob("*.yaml"))
TEXTS = [path.read_text() for path in MANIFESTS]
DOCUMENTS = [list(yaml.safe_load_all(p.read_text())) for p in MANIFESTS if p.stem != "bad-yaml"]


def yaml_case(run_seed: int, index: int) -> str:
    rng = case_rng(run_seed, "yaml", index)
    if rng.random() < 0.6:  # mutated values: the text stays YAML, so it reaches the checks
        documents = [doc for doc in rng.choice(DOCUMENTS) if doc is not None]
        text = dump_yaml(rng, documents)
        rounds = rng.choice([0, 0, 0, 1])
    else:
        text = rng.choice(TEXTS)
        rounds = rng.choice([1, 1, 2, 3])
    for _ in range(rounds):
        if rng.random() < 0.2:
            where = rng.randrange(len(text) + 1)
            text = text[:where] + rng.choice(YAML_RAW) + text[where:]
        else:
            text = mutate_yaml_text(rng, text)
    return text + "\n"  # a newline: read as YAML text, never as a file name


def check(text: str) -> None:
    """What ``validate`` and ``serve`` (``load_deployments``) do with a file, up to serving it:
    read it, check each deployment, count its nodes, and default the valid ones."""
    with contextlib.suppress(SpecError):
        for document in read_documents(text):
            problems = validate(document.deployment)
            for predictor in document.deployment.spec.predictors:
                count_nodes(predictor.graph)
            if not problems:
                default(document.deployment)


def test_fuzz_yaml_manifests() -> None:
    run_seed, cases = seed(), max(1, case_count() // 2)
    failures: list[str] = []
    refused = 0
    for index in range(cases):
        text = yaml_case(run_seed, index)
        started = time.monotonic()
        try:
            check(text)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(
                f"seed {run_seed} yaml #{index}: {type(exc).__name__}: {str(exc)[:200]} "
                f"(at {Path(where.filename).name}:{where.lineno}) in {text[:200]!r}"
            )
            continue
        seconds = time.monotonic() - started
        if seconds > CASE_SECONDS:
            failures.append(f"seed {run_seed} yaml #{index}: took {seconds:.1f} s")
        refused += 1
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:10])
    assert refused == cases


def test_the_manifests_load() -> None:
    assert len(DOCUMENTS) >= 10
    for path in MANIFESTS:
        if path.parent.name != "invalid":
            assert load_deployments(path)


def test_cases_are_reproducible() -> None:
    assert yaml_case(7, 3) == yaml_case(7, 3)
    assert yaml_case(7, 3) != yaml_case(7, 4)
