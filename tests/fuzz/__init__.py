"""Seeded fuzzing of what a client or a manifest author can send: REST and gRPC bodies, YAML.

Quick by default (a CI run); ``INFERGRAPH_FUZZ_CASES`` and ``INFERGRAPH_FUZZ_SEED`` set how
many cases each target runs and from which seed (docs/interop.md, "Fuzzing").
"""
