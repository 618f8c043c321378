"""The malloc tuning the servers apply at start-up (serving/memory.py)."""

from __future__ import annotations

import platform

import pytest

from infergraph.serving.memory import keep_large_buffers
from infergraph.settings import ComponentSettings, GraphSettings


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_takes_the_thresholds() -> None:
    assert keep_large_buffers() is True


@pytest.mark.parametrize("settings", [ComponentSettings, GraphSettings])
def test_on_by_default_and_off_by_env(settings: type) -> None:
    assert settings.from_env({}).malloc_tuning is True
    assert settings.from_env({"INFERGRAPH_MALLOC_TUNING": "0"}).malloc_tuning is False
