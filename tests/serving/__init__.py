"""Tests of ``infergraph.serving``."""
