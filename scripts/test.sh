#!/usr/bin/env bash
# Installs everything the tests need and runs them: Rust unit/property tests, the Python
# extension, the Go-built kube-apiserver + etcd (cached under ~/.cache/kfast), and pytest.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache="${KFAST_CACHE:-$HOME/.cache/kfast}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/cargo-target}"

step() { printf '\n==> %s\n' "$*"; }

step "Python environment"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q 'maturin>=1.7,<2'
step "Build and install kfast (release build of the Rust extension)"
python -m pip install -q '.[test]'

step "cargo test (Rust core, no interpreter)"
cargo test --quiet

if [ -x testenv/build.sh ]; then
  step "kube-apiserver + etcd from Go modules (cached)"
  bash testenv/build.sh
fi

step "pytest"
# Run from outside the source tree so the installed package (with its compiled module)
# is what gets imported.
cd "$root/tests"
set +e
python -m pytest -c "$root/pyproject.toml" --rootdir "$root" "$root/tests" "$@"
rc=$?
set -e
exit $rc
