"""The graph layer: the deployment spec, its plan, its executor and the node clients.

Three jobs, one package each:

- :mod:`infergraph.graph.spec`: the deployment spec and everything that reads it (the
  pydantic models of ``GraphDeployment`` and ``SeldonDeployment``, YAML to models, Seldon's
  defaulting and admission rules, what ``serve`` needs on this machine).
- The plan and its run, here: :mod:`~infergraph.graph.plan` (a spec compiled once, with
  :mod:`~infergraph.graph.raw_input`, which nodes take the request as it came) and
  :mod:`~infergraph.graph.executor` (one request walked through it, with
  :mod:`~infergraph.graph.feedback_checks`, which nodes vet a feedback first).
- :mod:`infergraph.graph.nodes`: the node clients, in process and in other processes over
  REST or gRPC (what a node call means; the bytes are ``wire``'s).

The spec knows nothing of plans or nodes; the plan reads the spec; the nodes read both.
"""
