#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed package, not the checkout: build the wheel from a copy of the tracked sources,
# install it with constraints.txt into a fresh venv outside the checkout, and from an empty
# folder run export -> verify -> run -> bench. `pip install -e` (make setup) hides a missing
# template, C source or data file; this does not.
#
# Speed: the pinned dependencies (3.4 GB, mostly TensorFlow) are installed once per dependency
# set into a cached venv of dependencies only (~/.cache/nsconv/wheel-deps-HASH, HASH of
# constraints.txt and the wheel's declared requirements: nothing else is in it, so an undeclared
# import fails here). Each check hard-links that venv into a fresh one and installs the wheel
# with --no-index: pip must find every requirement already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONPATH PYTHONHOME  # nothing of the checkout may be importable in the fresh venv
ROOT=$PWD
PY=$(realpath -s "${PYTHON:-.venv/bin/python}")  # builds the wheel (setuptools>=77), makes the venvs
CACHE=${NSCONV_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nsconv}
T0=$(date +%s)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsconv-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. the wheel, from the tracked (and new, not ignored) files only
mkdir "$WORK/src" "$WORK/dist"
git ls-files -z --cached --others --exclude-standard \
  | (cd "$ROOT" && xargs -0 -I{} find {} -maxdepth 0 -type f -print0 2>/dev/null) \
  | tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/src" -xf -
# the build backend of the running Python when it is recent enough (make setup's .venv), else
# pip's isolated build environment
ISOLATION=--no-build-isolation
"$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' \
  2>/dev/null || ISOLATION=
"$PY" -m pip wheel -q --no-deps $ISOLATION -w "$WORK/dist" "$WORK/src" >/dev/null
WHEEL=$(ls "$WORK"/dist/nsconv-*.whl)
echo "wheel_check: built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) kB)"

# 2. the cached dependencies venv
REQS=$("$PY" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
print("\n".join(l for l in z.read(meta).decode().splitlines()
                if l.startswith("Requires-Dist:") and "extra ==" not in l))' "$WHEEL")
HASH=$( (cat constraints.txt; echo "$REQS"; "$PY" --version) | sha256sum | cut -c1-16)
DEPS="$CACHE/wheel-deps-$HASH"
if [ ! -f "$DEPS/.complete" ]; then
  echo "wheel_check: installing the pinned dependencies once into $DEPS (slow, cached)"
  rm -rf "$DEPS" && mkdir -p "$CACHE"
  "$PY" -m venv "$DEPS"
  "$DEPS/bin/python" -m pip install -q -c constraints.txt "$WHEEL"
  "$DEPS/bin/python" -m pip uninstall -q -y nsconv
  touch "$DEPS/.complete"
  # older dependency sets are not used again
  find "$CACHE" -maxdepth 1 -name 'wheel-deps-*' ! -path "$DEPS" -exec rm -rf {} +
fi

# 3. a fresh venv outside the checkout: the dependencies hard-linked, the wheel installed
VENV="$WORK/venv"
"$PY" -m venv --without-pip "$VENV"
SITE=$(echo "$DEPS"/lib/python3*/site-packages)
# hard links when the cache and the temp dir share a file system, else a plain (slower) copy
cp -al "$SITE/." "$(echo "$VENV"/lib/python3*/site-packages)/" 2>/dev/null \
  || cp -a "$SITE/." "$(echo "$VENV"/lib/python3*/site-packages)/"
"$VENV/bin/python" -m pip install -q --no-index -c constraints.txt "$WHEEL"
NSCONV="$VENV/bin/nsconv"

# 4. the pipeline, from an empty folder (no checkout on any path)
mkdir "$WORK/run" && cd "$WORK/run"
cp "$ROOT/tests/data/0072_noisy.wav" in.wav
cp "$ROOT/tests/data/gtcrn/gtcrn_simple.onnx" gtcrn.onnx
T1=$(date +%s)
TIMES=""
step() {  # step NAME STDOUT-FILE nsconv-arguments...: stop with its output when it fails
  local name=$1 out=$2 t=$(date +%s)
  shift 2
  "$NSCONV" "$@" >"$out" 2>"$name.err" || { echo "wheel_check: nsconv $* failed:"; cat "$out" "$name.err"; exit 1; }
  TIMES="$TIMES $name $(($(date +%s) - t)) s,"
}
step export export.log export dynamic-nsnet2 -o OUT --target cortex-m4
step verify verify.log verify OUT --frames 50
step run run.log run OUT in.wav out.wav --frames 20
step bench bench.json bench OUT --core cortex-m4 --frames 5 --json
# GTCRN (a model from outside the nsNet2 family: the N-D compiler, its templates and front end)
step gtcrn-export gtcrn-export.log export gtcrn.onnx -o GOUT --target cortex-m4 --calib in.wav
step gtcrn-verify gtcrn-verify.log verify GOUT --frames 50
step gtcrn-run gtcrn-run.log run GOUT in.wav gtcrn.wav --frames 20
"$VENV/bin/python" - <<'EOF'
import json
import nsconv
import soundfile

assert "site-packages" in nsconv.__file__, nsconv.__file__
report = json.load(open("bench.json"))
assert report, "bench --json printed nothing"
x, rate = soundfile.read("out.wav")
assert rate == 16000 and len(x) > 0, (rate, len(x))
print(f"wheel_check: nsconv from {nsconv.__file__}")
EOF
T2=$(date +%s)
echo "wheel_check: ok in $((T2 - T0)) s (wheel and venv $((T1 - T0)) s;${TIMES%,})"
