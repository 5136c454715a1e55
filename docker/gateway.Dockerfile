# Gateway image: the WebSocket gateway (VAD, turns, sessions). No torch, no GPU.
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t koe-server-gateway .
FROM python:3.11.13-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

RUN useradd --create-home --uid 10001 koe \
    && python -m venv /opt/venv

WORKDIR /opt/koe
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
# The gateway extra, spelled out: silero-vad declares torch, but the gateway only reads
# the ONNX file inside it through onnxruntime, so it is installed without its dependencies.
RUN pip install --no-cache-dir ./ "onnxruntime>=1.18" "prometheus-client>=0.20" "websockets>=12" \
    && pip install --no-cache-dir --no-deps "silero-vad>=6.0"

# Inside the container the gateway listens on every interface; it then demands
# GATEWAY_API_TOKEN, or GATEWAY_ALLOW_INSECURE_REMOTE=true (compose.yaml publishes it on
# the host's loopback only).
ENV GATEWAY_HOST=0.0.0.0
USER 10001:10001
WORKDIR /home/koe
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GATEWAY_PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "gateway"]
