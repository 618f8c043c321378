"""The graph layer: the deployment spec, its plan, its executor and the node clients.

- The spec: :mod:`~infergraph.graph.spec` (the pydantic models of ``GraphDeployment`` and
  ``SeldonDeployment``), :mod:`~infergraph.graph.load` (YAML to models),
  :mod:`~infergraph.graph.spec_defaults` (Seldon's defaulting) and
  :mod:`~infergraph.graph.validate` (Seldon's admission rules plus graph checks).
- The plan and its run: :mod:`~infergraph.graph.plan` (a spec compiled once) and
  :mod:`~infergraph.graph.executor` (one request walked through it).
- The nodes: in process (:mod:`~infergraph.graph.local_nodes`), replicated
  (:mod:`~infergraph.graph.replicas`) and remote over REST or gRPC
  (:mod:`~infergraph.graph.remote_nodes` and the clients next to it).
"""
