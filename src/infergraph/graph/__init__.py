"""The graph layer: the deployment spec, its plan and its executor.

For now only the spec exists: :mod:`~infergraph.graph.spec` (the pydantic models of
``GraphDeployment`` and ``SeldonDeployment``), :mod:`~infergraph.graph.load` (YAML to
models), :mod:`~infergraph.graph.spec_defaults` (Seldon's defaulting) and
:mod:`~infergraph.graph.validate` (Seldon's admission rules plus graph checks).
"""
