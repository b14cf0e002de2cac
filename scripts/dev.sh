#!/usr/bin/env bash
# The two README commands: `bash scripts/dev.sh run` (dashboard) and `bash scripts/dev.sh test` (tests).
# Both set up a local virtual environment first, idempotently: torch alone and first (the local CPU
# wheel; any other spec would pull GBs of CUDA wheels), then the project with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${EMBEDSCOPE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local stamp="$VENV/.embedscope-installed"
  local want
  want=$(cat pyproject.toml scripts/dev.sh | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if ! python -c "import torch" >/dev/null 2>&1; then
    echo "==> installing torch (CPU) first"
    pip install --quiet "torch==2.13.0"
  fi
  echo "==> installing embedscope and its dependencies"
  pip install --quiet -e ".[test,offline-models]"
  echo "$want" > "$stamp"
}

setup_browser() {
  # Debian's chromium for the real-browser tests; Playwright's own browser download never works offline.
  if [ -x /usr/bin/chromium ]; then return 0; fi
  echo "==> installing Debian chromium for the browser tests"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-liberation >/dev/null
}

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.numba-cache}"

cmd="${1:-}"
shift || true
case "$cmd" in
  run)
    setup_python
    # ui.serve = `streamlit run Home.py` with the UMAP warm-up started with the server process.
    exec python -m ui.serve --server.headless true "$@"
    ;;
  test)
    setup_python
    setup_browser
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    exec python -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh run|test [args...]" >&2
    exit 2
    ;;
esac
