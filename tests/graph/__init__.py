"""Tests of ``infergraph.graph``."""
