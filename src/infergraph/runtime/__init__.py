"""Data plane (transport-neutral), worker processes and the local runtime."""
