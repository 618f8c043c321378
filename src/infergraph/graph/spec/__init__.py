"""The deployment spec, and everything that reads it: ``GraphDeployment`` and Seldon's
``SeldonDeployment`` as pydantic models, YAML turned into them, Seldon's defaulting and
admission rules, and what ``infergraph serve`` needs on this machine beyond a valid spec.

It says what a deployment is, never how it runs: the plan (:mod:`infergraph.graph.plan`)
compiles a validated spec once, and the nodes (:mod:`infergraph.graph.nodes`) serve it.

- :mod:`~infergraph.graph.spec.models`: the resource's models, field for field Seldon's Go
  types, on the Kubernetes types of :mod:`~infergraph.graph.spec.kube_types`; the single
  source of the CRD schema.
- :mod:`~infergraph.graph.spec.load`: YAML documents to models, through the bounded loader of
  :mod:`~infergraph.graph.spec.yaml_loader`; every problem found with its field path
  (:mod:`~infergraph.graph.spec.problems`).
- :mod:`~infergraph.graph.spec.defaults`: Seldon's defaulting;
  :mod:`~infergraph.graph.spec.validate`: Seldon's admission rules plus graph checks.
- :mod:`~infergraph.graph.spec.model_sources` and :mod:`~infergraph.graph.spec.serve_checks`:
  where a container's code lives on this machine, and what stops ``serve`` from running a
  valid spec here.

The names callers commonly need are re-exported here; the rest live in their modules.
"""

from __future__ import annotations

from infergraph.graph.spec.defaults import default
from infergraph.graph.spec.kube_types import Container
from infergraph.graph.spec.load import (
    SourceDocument,
    load_deployments,
    load_documents,
    parse_resource,
    read_documents,
)
from infergraph.graph.spec.models import (
    Deployment,
    Explainer,
    GraphDeployment,
    PredictiveUnit,
    PredictorSpec,
    Protocol,
    SeldonDeployment,
    SeldonPodSpec,
    Transport,
    is_prepackaged,
    walk_graph,
)
from infergraph.graph.spec.problems import Problem, SpecError, SpecUnreadable
from infergraph.graph.spec.validate import count_nodes, validate

__all__ = [
    "Container",
    "Deployment",
    "Explainer",
    "GraphDeployment",
    "PredictiveUnit",
    "PredictorSpec",
    "Problem",
    "Protocol",
    "SeldonDeployment",
    "SeldonPodSpec",
    "SourceDocument",
    "SpecError",
    "SpecUnreadable",
    "Transport",
    "count_nodes",
    "default",
    "is_prepackaged",
    "load_deployments",
    "load_documents",
    "parse_resource",
    "read_documents",
    "validate",
    "walk_graph",
]
