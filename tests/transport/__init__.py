"""Tests of ``infergraph.transport``."""
