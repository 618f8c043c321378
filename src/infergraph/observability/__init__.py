"""Metrics (an app-owned registry, Prometheus text), logs and payload logging."""
