"""Tests of ``infergraph.protocol``."""
