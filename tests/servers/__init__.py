"""Tests of ``infergraph.servers``."""
