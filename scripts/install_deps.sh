#!/usr/bin/env bash
# Installs every Debian package Riffle needs to build and test. Idempotent: when everything is
# already installed it only checks (dpkg-query) and returns in well under a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libeigen3-dev libcereal-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  librdkafka-dev libsimdjson-dev libyaml-cpp-dev libxxhash-dev libcli11-dev
  libcpp-httplib-dev
  clang-format clang-tidy clang-14 libclang-rt-14-dev
  python3-venv
  # The Kafka test broker (scripts/kafka.sh): Java 17+, Maven to fetch its jars, kcat to probe it.
  openjdk-17-jre-headless maven kcat
  # The demo reads the HTTP metrics endpoint.
  curl
  # The dashboard's browser test (tests/integration/test_dashboard.py): headless Chromium driven
  # by Selenium through Debian's chromedriver (/usr/bin/chromedriver, so Selenium never
  # downloads a browser), and a font for legible screenshots.
  chromium chromium-driver fonts-dejavu-core
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
