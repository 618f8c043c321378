"""Tests of ``infergraph.components``."""
