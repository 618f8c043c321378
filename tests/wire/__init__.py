"""Tests of ``infergraph.wire``."""
