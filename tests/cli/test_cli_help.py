"""Every command's ``--help`` explains every option and shows an example.

Seldon's flags that infergraph accepts but does not act on are grouped under "accepted for
compatibility", so a reader can tell them from the ones that matter.
"""

from __future__ import annotations

import argparse

import pytest

from infergraph.cli.main import build_parser


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


COMMANDS = commands()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name: str) -> None:
    parser = COMMANDS[name]
    missing = [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert not missing, f"infergraph {name}: no help text for {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_an_example(name: str) -> None:
    parser = COMMANDS[name]
    assert "Example" in (parser.epilog or ""), f"infergraph {name} --help has no example"
    assert f"infergraph {name}" in (parser.epilog or "")


def test_seldon_flags_without_effect_are_grouped_as_such() -> None:
    parser = COMMANDS["microservice"]
    groups = {g.title: g for g in parser._action_groups}
    compat = groups.get("accepted for compatibility")
    assert compat is not None, sorted(t for t in groups if t)
    flags = {o for a in compat._group_actions for o in a.option_strings}
    assert {"--persistence", "--max-requests", "--keepalive"} <= flags
    assert "--tracing" not in flags  # OpenTelemetry tracing (docs/observability.md)
    for action in compat._group_actions:
        assert "ignored" in (action.help or "") or "no effect" in (action.help or ""), action
