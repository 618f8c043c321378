"""A predictor pod for real, under podman: the runtime image built by
scripts/build-runtime-image.sh, a transformer image built by ``infergraph build``, and the
pod of tests/fixtures/podman/deployment.yaml, as ``infergraph render`` writes it and as
written by hand, run with ``podman kube play``: the model-download init container fetching
an iris model from an S3 server on this machine, the prepackaged sklearn server, the
transformer, and the orchestrator calling both over localhost (``serve --remote``). Real
curl gets predictions over Seldon REST and V2 REST, grpcio over gRPC, and ``podman kube
down`` leaves no pod behind. A second test installs a model's requirements from wheels in a
``RUN`` step with no network.

Needs root, podman, runc and debootstrap (``apt-get install -y podman runc debootstrap``);
skipped without them unless $CI is set. The first run builds the runtime image (about two
minutes, mostly debootstrap and the dependency layer); later runs reuse the cached layers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import string
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml
from google.protobuf import json_format

from infergraph.protocol.proto import inference_pb2, inference_pb2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.helpers import model_files, model_stores
from tests.helpers.model_stores import S3
from tests.helpers.ports import released_ports
from tests.helpers.procs import http_request

# the pod runs the image's environment: the run on the lowest dependencies skips it
pytestmark = [pytest.mark.slow, pytest.mark.own_environment]

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "podman"
TRANSFORMER_IMAGE = "localhost/infergraph-test-transformer:latest"
ROW_MM = [[51.0, 35.0, 14.0, 2.0]]  # model_files.ROW in millimetres: the transformer divides
READY_TIMEOUT = 240.0
RUN_COMMAND = (
    "apt-get install -y podman runc debootstrap && "
    ".venv/bin/python -m pytest tests/kube/test_podman_pod.py"
)

s3 = model_stores.s3
s3_endpoint = model_stores.s3_endpoint


@dataclass(frozen=True)
class Podman:
    """How to run podman here: its global options and env (CONTAINERS_CONF)."""

    argv: tuple[str, ...]
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        done = subprocess.run(
            [*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return done.stdout


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    missing = [tool for tool in ("podman", "debootstrap") if shutil.which(tool) is None]
    problem = f"{', '.join(missing)} not installed" if missing else ""
    if not problem and os.geteuid() != 0:
        problem = "needs root (debootstrap and chroot build the runtime image)"
    if problem:
        message = f"{problem}; to run it: {RUN_COMMAND}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Where the default runtime (crun) or rlimits are refused (containers in containers),
    # runc and an empty ulimit list work; both are harmless elsewhere.
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    runtime = os.environ.get("INFERGRAPH_TEST_OCI_RUNTIME") or (
        "runc" if shutil.which("runc") else ""
    )
    argv = ("podman", "--runtime", runtime) if runtime else ("podman",)
    return Podman(argv, env)


def timed(what: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
    """Run a build step, show how long it took, and return its stdout."""
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    sys.stderr.write(f"\n{what}: {seconds:.1f} s\n")
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def images(podman: Podman) -> tuple[str, str]:
    """(runtime image, transformer image), built or found in the caches."""
    script = ROOT / "scripts" / "build-runtime-image.sh"
    out = timed("runtime image", ["bash", str(script)], podman.env, timeout=1800)
    runtime = out.strip().splitlines()[-1]
    build = [sys.executable, "-m", "infergraph", "build", str(FIXTURES / "transformer"),
             "-t", TRANSFORMER_IMAGE, "--base", runtime, "--builder", "podman"]  # fmt: skip
    if "--runtime" in podman.argv:
        build += ["--runtime", podman.argv[podman.argv.index("--runtime") + 1]]
    timed("transformer image (infergraph build)", build, podman.env, timeout=600)
    return runtime, TRANSFORMER_IMAGE


@dataclass(frozen=True)
class Pod:
    name: str
    http: int
    grpc: int
    file: Path


def fill(template: str, into: Path, **values: object) -> Path:
    text = string.Template((FIXTURES / template).read_text()).substitute(values)
    into.write_text(text)
    into.chmod(0o644)  # the orchestrator reads its deployment as user 8888
    return into


def logs(podman: Podman, pod: str) -> str:
    names = podman.run("ps", "-a", "--filter", f"pod={pod}", "--format", "{{.Names}}", check=False)
    parts = []
    for name in names.split():
        done = subprocess.run(
            [*podman.argv, "logs", name], env=podman.env, capture_output=True, text=True
        )
        parts.append(f"--- {name}\n{(done.stdout + done.stderr)[-3000:]}")
    return "\n".join(parts)


@contextlib.contextmanager
def play(podman: Podman, manifest: Path, name: str, http: int, grpc: int) -> Iterator[Pod]:
    """``podman kube play`` the pod, wait until its orchestrator is ready, then take it down."""
    podman.run("kube", "play", "--network", "host", str(manifest))
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                if http_request(http, "GET", "/ready", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"pod not ready in {READY_TIMEOUT} s:\n{logs(podman, name)}")
            time.sleep(0.2)
        yield Pod(name, http, grpc, manifest)
    finally:
        podman.run("kube", "down", str(manifest), check=False)


def hand_written(tmp_path: Path, images: tuple[str, str], model_uri: str, s3_endpoint: str,
                 name: str, ports: dict[str, int]) -> Path:  # fmt: skip
    """tests/fixtures/podman/pod.yaml, filled in."""
    runtime, transformer = images
    deployment = fill(
        "deployment.yaml", tmp_path / "deployment.yaml",
        transformer_image=transformer, model_uri=model_uri,
    )  # fmt: skip
    return fill(
        "pod.yaml", tmp_path / "pod.yaml",
        name=name, runtime_image=runtime, transformer_image=transformer, model_uri=model_uri,
        s3_endpoint=s3_endpoint, deployment_file=deployment, **ports,
    )  # fmt: skip


def _replace_flag(command: list[str], flag: str, value: int) -> None:
    command[command.index(flag) + 1] = str(value)


def rendered(tmp_path: Path, images: tuple[str, str], model_uri: str, s3_endpoint: str,
             name: str, ports: dict[str, int]) -> Path:  # fmt: skip
    """What ``infergraph render`` makes of deployment.yaml (its containers given free ports),
    as a pod podman can play. Adapted, and only here: the Deployment's pod template becomes
    a Pod with restartPolicy OnFailure (podman 4.3 restarts init containers under Always);
    probes and preStop hooks go (podman runs them as commands in the container, and the
    image has neither nc nor curl), and so do container ports (with the host's network,
    podman refuses port mappings: every port is the host's anyway); the ConfigMap volume
    becomes a file (the ConfigMap's own data) and the downward API volume an emptyDir
    (podman 4.3 has neither); the S3 credentials, which a cluster takes from
    envSecretRefName's Secret, go into the init container's env; and the orchestrator's
    ports, fixed at 8000 and 5001, become free ones."""
    runtime, transformer = images
    document = yaml.safe_load(
        string.Template((FIXTURES / "deployment.yaml").read_text()).substitute(
            transformer_image=transformer, model_uri=model_uri
        )
    )
    containers = []
    for container in ("transformer", "classifier"):
        declared = [{"name": kind, "containerPort": ports[f"{container}_{kind}"]}
                    for kind in ("http", "grpc", "metrics")]  # fmt: skip
        containers.append({"name": container, "ports": declared})
    containers[0]["image"] = transformer
    document["spec"]["predictors"][0]["componentSpecs"] = [{"spec": {"containers": containers}}]
    source = tmp_path / "sdep.yaml"
    source.write_text(yaml.safe_dump(document, sort_keys=False))
    prefix = runtime.removesuffix(f"infergraph:{runtime.rpartition(':')[2]}")
    done = subprocess.run(
        [sys.executable, "-m", "infergraph", "render", str(source), "--image-prefix", prefix],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    spec["restartPolicy"] = "OnFailure"
    for container in [*spec["containers"], *spec.get("initContainers", [])]:
        for key in ("livenessProbe", "readinessProbe", "lifecycle", "ports"):
            container.pop(key, None)
        if container.get("command", [])[:2] == ["infergraph", "serve"]:
            _replace_flag(container["command"], "--http-port", ports["orchestrator_http"])
            _replace_flag(container["command"], "--grpc-port", ports["orchestrator_grpc"])
    ((file, text),) = config["data"].items()
    (tmp_path / file).write_text(text)
    (tmp_path / file).chmod(0o644)  # the orchestrator reads it as user 8888
    graph_volume = ""
    for volume in spec["volumes"]:
        if "configMap" in volume:
            del volume["configMap"]
            volume["hostPath"] = {"path": str(tmp_path / file), "type": "File"}
            graph_volume = volume["name"]
        elif "downwardAPI" in volume:
            del volume["downwardAPI"]
            volume["emptyDir"] = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] == graph_volume:
                mount["mountPath"] = f"{mount['mountPath'].rstrip('/')}/{file}"
    (init,) = spec["initContainers"]
    init["env"] = [*init.get("env", []), *(
        {"name": key, "value": value}
        for key, value in {**model_stores.CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3_endpoint}.items()
    )]  # fmt: skip
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels}, "spec": spec}  # fmt: skip
    path = tmp_path / "rendered-pod.yaml"
    path.write_text(yaml.safe_dump(pod, sort_keys=False))
    return path


@pytest.fixture(params=[pytest.param(hand_written, id="hand-written"),
                        pytest.param(rendered, id="rendered")])  # fmt: skip
def pod(
    request: pytest.FixtureRequest,
    podman: Podman,
    images: tuple[str, str],
    s3: S3,
    tmp_path: Path,
) -> Iterator[Pod]:
    model_files.write_sklearn(tmp_path / "iris", "skops")  # a remote pickle would need trust
    model_uri = s3.put_folder("sklearn/iris", tmp_path / "iris")
    # not held: the pod's servers run as another user, and SO_REUSEPORT shares a port
    # only between sockets of one user
    ports = dict(zip(
        ["classifier_http", "classifier_grpc", "classifier_metrics", "transformer_http",
         "transformer_grpc", "transformer_metrics", "orchestrator_http", "orchestrator_grpc"],
        released_ports(8), strict=True,
    ))  # fmt: skip
    name = f"iris-{uuid.uuid4().hex[:8]}"
    manifest = request.param(tmp_path, images, model_uri, s3.endpoint, name, ports)
    with play(podman, manifest, name, ports["orchestrator_http"], ports["orchestrator_grpc"]) as p:
        yield p


def curl(port: int, path: str, body: object) -> dict:
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", "Content-Type: application/json",
         "-d", json.dumps(body), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_a_predictor_pod_serves_the_graph(podman: Podman, pod: Pod) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install -y curl)")
    expected = model_files.classifier().predict_proba(model_files.ROW)
    (row,) = expected.tolist()

    seldon = curl(pod.http, "/api/v1.0/predictions", {"data": {"ndarray": ROW_MM}})
    assert seldon["data"]["ndarray"][0] == pytest.approx(row)
    assert set(seldon["meta"]["requestPath"]) == {"transformer", "classifier"}

    v2 = curl(pod.http, "/v2/models/iris/infer", {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": ROW_MM[0]}],
    })  # fmt: skip
    (output,) = v2["outputs"]
    assert output["shape"] == [1, 3]
    assert output["data"] == pytest.approx(row)

    with grpc.insecure_channel(f"127.0.0.1:{pod.grpc}") as channel:
        request = json_format.ParseDict({"data": {"ndarray": ROW_MM}}, pb.SeldonMessage())
        answer = pb_grpc.SeldonStub(channel).Predict(request, timeout=30)
        (got,) = json_format.MessageToDict(answer)["data"]["ndarray"]
        assert got == pytest.approx(row)

        infer = inference_pb2.ModelInferRequest(model_name="iris")
        infer.inputs.add(name="input", datatype="FP64", shape=[1, 4])
        infer.raw_input_contents.append(np.array(ROW_MM, np.float64).tobytes())
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        result = stub.ModelInfer(infer, timeout=30)
        values = np.frombuffer(result.raw_output_contents[0], np.float64)
        assert values.tolist() == pytest.approx(row)

    podman.run("kube", "down", str(pod.file))
    assert (
        subprocess.run(
            [*podman.argv, "pod", "exists", pod.name], env=podman.env, capture_output=True
        ).returncode
        == 1
    )
    left = podman.run("ps", "-a", "--filter", f"name={pod.name}", "--format", "{{.Names}}")
    assert left.strip() == ""


def write_wheel(folder: Path, name: str = "iris_units", version: str = "1.0") -> Path:
    """A pure-Python wheel made by hand (no build backend, no network)."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": b"MM_PER_CM = 10\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: infergraph-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = (
        "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def test_build_installs_requirements_from_wheels_with_no_index(
    podman: Podman, images: tuple[str, str], tmp_path: Path
) -> None:
    """A RUN step under podman (runc, CONTAINERS_CONF) installing from --wheels only."""
    runtime, _ = images
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "transformer", folder)
    (folder / "requirements.txt").write_text("iris-units==1.0\n")
    write_wheel(tmp_path / "wheels")
    image = "localhost/infergraph-test-wheels:latest"
    build = [sys.executable, "-m", "infergraph", "build", str(folder), "-t", image,
             "--base", runtime, "--builder", "podman", "--wheels", str(tmp_path / "wheels"),
             "--network", "none"]  # fmt: skip
    if "--runtime" in podman.argv:
        build += ["--runtime", podman.argv[podman.argv.index("--runtime") + 1]]
    timed("model image with wheels (infergraph build)", build, podman.env, timeout=600)
    try:
        out = podman.run(
            "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c",
            "import os, iris_units; print(iris_units.MM_PER_CM, os.getuid(), os.getcwd(),"
            " os.environ['MODEL_NAME'], sorted(os.listdir('.')))",
        )  # fmt: skip
        assert out.split(" ", 4)[:4] == ["10", "8888", "/microservice", "Transformer"]
        assert "Transformer.py" in out and "wheels" not in out
    finally:
        podman.run("rmi", "-f", image, check=False)
