"""Tests of ``infergraph.observability``."""
