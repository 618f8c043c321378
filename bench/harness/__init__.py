"""Benchmark harness for ``bench/component.py``: servers, load generation, reporting."""
