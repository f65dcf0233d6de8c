#!/usr/bin/env bash
# Configures and builds one flavour of Riffle with CMake + Ninja.
#   scripts/build.sh [release|asan|tsan] [extra cmake args...]
# Build trees live in build/<flavour>; re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
shift || true
jobs=${RIFFLE_JOBS:-2}

case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    args=(-DCMAKE_BUILD_TYPE=Debug -DRIFFLE_SANITIZE=address,undefined -DRIFFLE_BUILD_BENCHMARKS=OFF) ;;
  tsan)    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRIFFLE_SANITIZE=thread -DRIFFLE_BUILD_BENCHMARKS=OFF) ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan]" >&2; exit 2 ;;
esac

cmake -S . -B "build/$flavour" -G Ninja "${args[@]}" "$@" >/dev/null
cmake --build "build/$flavour" -j "$jobs"
