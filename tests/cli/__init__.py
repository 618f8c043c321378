"""Tests of ``infergraph.cli``."""
