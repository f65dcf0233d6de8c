#!/usr/bin/env bash
# Tests the Python client (clients/python) against a real `riffle serve`.
#
#   scripts/test_python_client.sh [RIFFLE_BINARY] [pytest args...]
#
# RIFFLE_BINARY defaults to build/release/service/riffle. The script
#   1. creates the venv .venv-client (python3 -m venv) if it is missing or broken,
#   2. installs clients/python/requirements-test.txt and the package itself (`pip install
#      clients/python`, whose build generates the stubs from proto/riffle/v1/riffle.proto),
#   3. runs pytest on clients/python/tests.
# Step 2 is skipped when a stamp in the venv matches the SHA-256 of everything it depends on
# (the requirements, the package's sources and the proto), so a second run starts at once.
# Environment: PYTHON picks the interpreter the venv is made from (default: python3);
# RIFFLE_CLIENT_INSTALL_ONLY=1 stops after step 2 (the demo uses the venv this way).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${1:-build/release/service/riffle}"
shift || true
[[ "${binary}" = /* ]] || binary="${root}/${binary}"
venv="${root}/.venv-client"
package="${root}/clients/python"
stamp="${venv}/.riffle-client.sha256"
python="${PYTHON:-python3}"

if [[ ! -x "${binary}" ]]; then
  echo "test_python_client: no riffle binary at ${binary} (build it first)" >&2
  exit 1
fi

# What the installed venv depends on: hashed in a fixed order.
want="$(cd "${root}" && find clients/python/pyproject.toml clients/python/setup.py \
          clients/python/requirements-test.txt clients/python/README.md \
          clients/python/riffle_client proto/riffle/v1/riffle.proto \
          -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"

venv_runs() {
  [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -c '' 2>/dev/null
}

if ! venv_runs || [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
  if ! venv_runs; then
    echo "test_python_client: creating ${venv} with $(command -v "${python}")" >&2
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
  fi
  rm -f "${stamp}"
  echo "test_python_client: installing clients/python and its test requirements" >&2
  pip=("${venv}/bin/python" -m pip --disable-pip-version-check --quiet)
  "${pip[@]}" install --only-binary=:all: -r "${package}/requirements-test.txt"
  # A fresh build each time (no stale build/ dir), so the stubs come from the current proto.
  rm -rf "${package}/build"
  "${pip[@]}" install --force-reinstall --no-deps "${package}"
  rm -rf "${package}/build" "${package}"/*.egg-info
  echo "${want}" >"${stamp}"
fi

if [[ "${RIFFLE_CLIENT_INSTALL_ONLY:-0}" == 1 ]]; then
  exit 0
fi

# The installed package is tested, not the source tree: bin/pytest (unlike `python -m pytest`)
# does not put the working directory, which holds riffle_client/ without stubs, on sys.path.
cd "${package}"
exec "${venv}/bin/pytest" -p no:cacheprovider -rxXs --riffle-binary "${binary}" tests "$@"
