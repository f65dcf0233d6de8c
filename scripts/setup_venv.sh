#!/usr/bin/env bash
# Creates the Python virtual environment /.venv for the benchmarks and installs the pinned
# packages of benchmarks/requirements.txt into it.
#
# Idempotent: a stamp file inside .venv records the SHA-256 of requirements.txt that was last
# installed; when it matches and the venv's interpreter still runs, the script only checks and
# returns at once. A venv whose interpreter no longer runs (e.g. the Python it was made from is
# gone) is rebuilt from scratch.
#
# Needs python3 with the venv module (Debian: python3-venv, installed by scripts/install_deps.sh).
# Environment: PYTHON picks the interpreter the venv is made from (default: python3 on PATH).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${root}/.venv"
requirements="${root}/benchmarks/requirements.txt"
stamp="${venv}/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "${requirements}" | cut -d' ' -f1)"

venv_runs() {
  [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -c '' 2>/dev/null
}

if venv_runs && [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
  exit 0
fi

if ! venv_runs; then
  echo "setup_venv: creating ${venv} with $(command -v "${python}")" >&2
  rm -rf "${venv}"
  "${python}" -m venv "${venv}"
fi

echo "setup_venv: installing ${requirements}" >&2
rm -f "${stamp}"
# Wheels only: River and SciPy would otherwise need Rust and Fortran toolchains to build.
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=:all: -r "${requirements}"
echo "${want}" >"${stamp}"
