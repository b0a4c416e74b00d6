#!/usr/bin/env bash
# Sets up circuitsim on a fresh Debian bookworm machine:
#   ngspice 46 with KLU from bookworm-backports (falls back to bookworm's 39 with a warning),
#   build deps for badcrossbar (cairo), and a virtual environment in .venv with the package.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

ngspice_version() { ngspice -v 2>/dev/null | grep -oE 'ngspice-[0-9]+' | head -1 | cut -d- -f2; }

have_libngspice() { ldconfig -p | grep -q 'libngspice\.so '; }

if [ "$(ngspice_version || true)" != "46" ] || ! have_libngspice || ! pkg-config --exists cairo 2>/dev/null; then
  if [ ! -f /etc/apt/sources.list.d/bookworm-backports.sources ]; then
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -q
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports \
      ngspice libngspice0 libngspice0-dev; then
    echo "WARNING: ngspice 46 from bookworm-backports is not available; installing bookworm's ngspice 39" >&2
    echo "WARNING: ngspice 39 has no KLU and is ~100x slower on large arrays" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q ngspice libngspice0 libngspice0-dev
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libcairo2-dev pkg-config
fi

# CHOLMOD for the numpy engine's symmetric factorizations (scikit-sparse 0.4.16 builds against
# bookworm's SuiteSparse 5.12; without it the engine falls back to SuperLU, 1.5-3x slower), with
# OpenBLAS under it: Debian's default reference BLAS makes CHOLMOD's supernodal factorization
# (large arrays) 3x slower
if [ ! -f /usr/include/suitesparse/cholmod.h ] || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libsuitesparse-dev libopenblas0-pthread
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,fast]'
echo "circuitsim set up: $(.venv/bin/python -c 'import circuitsim; print(circuitsim.__version__)'), ngspice $(ngspice_version)"
