"""The wire: what every byte from the network meets first, with the limits that bound it.

This package imports nothing of infergraph but :mod:`infergraph.errors`, so its code can be
read, tested and fuzzed on its own (``.importlinter`` holds it to that).
"""
