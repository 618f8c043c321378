"""Seldon's prebuilt router images run as the built-in routers, so bandit manifests load as-is."""

from __future__ import annotations

from pathlib import Path

from infergraph.graph.spec import load_deployments
from infergraph.routers import EpsilonGreedy, ThompsonSampling
from infergraph.serving.graph_server import build_dataplane
from infergraph.settings import GraphSettings

MANIFEST = """
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata: {name: mab}
spec:
  predictors:
  - name: default
    graph:
      name: eg-router
      type: ROUTER
      parameters:
      - {name: n_branches, value: "2", type: INT}
      - {name: epsilon, value: "0.2", type: FLOAT}
      - {name: verbose, value: "1", type: BOOL}
      children:
      - {name: a, type: MODEL}
      - {name: b, type: MODEL}
    componentSpecs:
    - spec:
        containers:
        - name: eg-router
          image: IMAGE
        - {name: a, image: a:1, env: [{name: MODEL_NAME, value: models.A}]}
        - {name: b, image: b:1, env: [{name: MODEL_NAME, value: models.B}]}
"""


async def _router(tmp_path: Path, image: str, manifest: str = MANIFEST) -> object:
    (tmp_path / "models.py").write_text(
        "class A:\n    def predict(self, X, names):\n        return X\nclass B(A):\n    pass\n"
    )
    path = tmp_path / "mab.yaml"
    path.write_text(manifest.replace("IMAGE", image))
    dataplane = build_dataplane(
        load_deployments(path)[0], GraphSettings(path=str(tmp_path), seed=1)
    )
    node = dataplane.node("eg-router")
    return node.client.component.user


async def test_epsilon_greedy_image_is_the_builtin_router(tmp_path: Path) -> None:
    router = await _router(tmp_path, "seldonio/mab_epsilon_greedy:1.18.0")
    assert isinstance(router, EpsilonGreedy)
    assert router.n_branches == 2


async def test_thompson_sampling_image_with_a_registry_prefix(tmp_path: Path) -> None:
    manifest = MANIFEST.replace('      - {name: epsilon, value: "0.2", type: FLOAT}\n', "")
    router = await _router(tmp_path, "docker.io/seldonio/mab_thompson_sampling:1.17.1", manifest)
    assert isinstance(router, ThompsonSampling)
