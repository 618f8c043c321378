"""Tests of ``infergraph.runtime``."""
