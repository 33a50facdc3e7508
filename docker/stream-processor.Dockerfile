# syntax=docker/dockerfile:1.7
# The stream-processor image: Kafka consumers and the online anomaly detectors. No torch, no pipelines.
# Build from the repository root: docker build -f docker/stream-processor.Dockerfile -t IMAGE .
# The base is pinned by exact tag; the release workflow resolves it to a digest and records it in the image labels.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY constraints.txt pyproject.toml README.md ./
COPY slipway ./slipway
COPY components ./components
COPY pipelines ./pipelines
RUN pip install -c constraints.txt .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.source="https://github.com/slipway-mlops/slipway" \
      org.opencontainers.image.description="Slipway stream processor"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --gid 10001 slipway && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin slipway
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["slipway.cli", "--help"]
