#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, once (apt-get update
# first on a fresh machine). Nothing is optional for `make test`: a core
# test never skips for lack of a tool.
set -euo pipefail
need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check gcc gcc
check g++ g++
check make make
check objcopy binutils
check ccache ccache
check cmake cmake
check clang clang
check promtool prometheus
check chromium chromium
check redis-server redis-server
check distccd distcc
[ ${#need[@]} -eq 0 ] && exit 0
echo "deps: installing ${need[*]}"
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
