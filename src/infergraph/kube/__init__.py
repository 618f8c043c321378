"""The Kubernetes layer: a deployment spec turned into Kubernetes objects.

:func:`infergraph.kube.render.render` is pure (no I/O, no environment, no clock): it maps a
``SeldonDeployment`` or ``GraphDeployment`` onto the Deployments, Services, autoscalers and
routes Seldon's operator would create, as plain dicts, so ``infergraph render`` (GitOps) and
an operator apply the same objects.
"""
