"""Metrics (an app-owned registry, Prometheus text), logs, payload logging and tracing."""
