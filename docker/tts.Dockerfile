# TTS service image: Kokoro, OpenJTalk, espeak-ng and Style-Bert-VITS2 voices.
# Build from the repository root:  docker build -f docker/tts.Dockerfile -t koe-server-tts .
# CPU image by default; --build-arg TORCH_VARIANT=cuda builds the CUDA one (compose.gpu.yaml does).
FROM python:3.11.13-slim-bookworm

# cpu: PyTorch's CPU-only wheels (small). cuda: PyPI's wheels, which bundle the CUDA
# runtime, so the host needs only the NVIDIA driver and container toolkit. cu126, cu128...:
# PyTorch's index for that CUDA version.
ARG TORCH_VARIANT=cpu
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    KOE_CACHE_DIR=/cache

# These first layers are the same in the three model images, so Docker stores torch once.
# /cache is owned by koe so that a fresh named volume mounted there is writable.
RUN useradd --create-home --uid 10001 koe \
    && mkdir /cache && chown koe:koe /cache \
    && python -m venv /opt/venv
# torch first and pinned (the Makefile's pin): an unpinned one would drag in another build.
RUN case "$TORCH_VARIANT" in \
        cpu) index=https://download.pytorch.org/whl/cpu ;; \
        cuda) index=https://pypi.org/simple ;; \
        *) index="https://download.pytorch.org/whl/$TORCH_VARIANT" ;; \
    esac \
    && pip install --no-cache-dir --index-url "$index" torch==2.13.0

# espeak-ng: the English voice runs it as a separate program.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/koe
COPY pyproject.toml README.md ./
COPY services ./services
# style-bert-vits2 pulls pyopenjtalk, which ships the same module as pyopenjtalk-plus:
# the plus package (bundled dictionary, no download) must be installed last to own it.
RUN pip install --no-cache-dir "./[tts]" \
    && pip install --no-cache-dir --force-reinstall --no-deps pyopenjtalk-plus==0.4.1.post10

# Inside the container the service listens on every interface; server.py then demands
# TTS_API_TOKEN, or TTS_ALLOW_INSECURE_REMOTE=true on a private network (compose.yaml).
ENV TTS_HOST=0.0.0.0
USER 10001:10001
WORKDIR /home/koe
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=5s --start-period=30m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('TTS_PORT', '8003'), timeout=4)"]
CMD ["python", "-m", "services.tts"]
