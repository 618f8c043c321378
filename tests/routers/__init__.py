"""Tests of ``infergraph.routers``."""
