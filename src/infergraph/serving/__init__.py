"""Processes that serve: REST, gRPC and metrics servers on one event loop, worker
processes sharing ports, and their supervision. Sits above ``transport``, which it
starts; ``runtime`` below it stays free of servers and sockets.
"""
