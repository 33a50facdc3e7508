# syntax=docker/dockerfile:1.7
# The component image: every KFP component (components/SLIPWAY_IMAGE), the drift CronJob, Feast servers and the
# churn predictor. Build from the repository root: docker build -f docker/component.Dockerfile -t IMAGE .
# The base is pinned by exact tag; the release workflow resolves it to a digest and records it in the image labels.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY constraints.txt ./
# torch's CPU build from its own index; the default index would bring the CUDA one (gigabytes).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY slipway ./slipway
COPY components ./components
COPY pipelines ./pipelines
RUN pip install -c constraints.txt ".[vision]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.source="https://github.com/slipway-mlops/slipway" \
      org.opencontainers.image.description="Slipway components, jobs and churn predictor"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --gid 10001 slipway && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin slipway
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Writable by the runtime user: KFP components write the Feast source and registry next to the definitions.
COPY --chown=10001:10001 feature_repo ./feature_repo
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["slipway.cli", "--help"]
