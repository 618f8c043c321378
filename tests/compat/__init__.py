"""Tests of ``infergraph.compat``."""
