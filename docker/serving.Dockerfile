# syntax=docker/dockerfile:1.7
# The serving image: KServe predictors for the recommender and vision models. No pipelines, no Feast repo.
# Build from the repository root: docker build -f docker/serving.Dockerfile -t IMAGE .
# The base is pinned by exact tag; the release workflow resolves it to a digest and records it in the image labels.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY constraints.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY slipway ./slipway
COPY components ./components
COPY pipelines ./pipelines
RUN pip install -c constraints.txt ".[vision]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.source="https://github.com/slipway-mlops/slipway" \
      org.opencontainers.image.description="Slipway KServe predictors"
# One BLAS/OpenMP thread per worker: tree ensembles scoring single rows otherwise oversubscribe the pod's CPUs.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    HOME=/tmp
RUN groupadd --gid 10001 slipway && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin slipway
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
# The InferenceService sets the command (python -m slipway.serving.<model> --model-dir /mnt/models ...).
ENTRYPOINT ["python", "-m"]
CMD ["slipway.serving.churn_model", "--help"]
