"""Tests of ``infergraph.kube``."""
