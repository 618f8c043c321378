# The infergraph runtime image: one image for every role in a predictor pod (the
# orchestrator `infergraph serve`, the model-download init container `infergraph
# fetch-model`, the prepackaged servers `infergraph microservice infergraph.servers.*`) and
# the base that `infergraph build` puts a model folder on.
#
#   docker build -t localhost/infergraph:0.1.0 .                       # or podman build
#   docker build --build-arg EXTRAS=sklearn,s3 -t localhost/infergraph:0.1.0-sklearn .
#
# scripts/build-runtime-image.sh builds the same layout (venv at /opt/infergraph, user 8888,
# /microservice, /mnt/models, entrypoint, ports) from Debian packages where no registry can
# be reached. Kubernetes probes check health, so the image has no HEALTHCHECK.

# ---- the infergraph wheel, built from this source tree
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---- the runtime
FROM python:3.11-slim

# `all`: every prepackaged server (sklearn, xgboost, lightgbm, onnx, mlflow), the model
# stores fetch-model reads (s3, gcs), Redis for bandit state shared across orchestrator
# replicas, and kopf for `infergraph operator` (deploy/operator.yaml runs this image). One image serves every container a rendered pod holds, so each extra a role
# needs has to be in it; a slimmer image for one server is a build-arg away.
ARG EXTRAS=all

ENV PATH=/opt/infergraph/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=wheel /dist /tmp/dist
# libgomp1: the OpenMP runtime LightGBM's wheel links against (it does not bundle one)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/infergraph \
    && pip install "$(ls /tmp/dist/infergraph-*.whl)[${EXTRAS}]" \
    && pip freeze > /opt/infergraph/requirements.lock \
    && rm -rf /tmp/dist \
    && useradd --uid 8888 --user-group --create-home --home-dir /home/infergraph \
        --shell /usr/sbin/nologin infergraph \
    && mkdir -p /microservice /mnt/models \
    && chown 8888:8888 /microservice /mnt/models

# 8888 is Seldon's default user id (DEFAULT_USER_ID); numeric, so runAsNonRoot can check it
USER 8888
WORKDIR /microservice

# node: REST 9000, gRPC 5000, metrics 6000; orchestrator: REST and metrics 8000, gRPC 5001
EXPOSE 9000 5000 6000 8000 5001

ENTRYPOINT ["infergraph"]
CMD ["--help"]
