#!/usr/bin/env bash
# Make a fresh Debian 12 machine ready to run pycrio (`bootstrap.sh`) or also to test it (`bootstrap.sh --test`):
# host packages, the venv, generated code, a default CNI config. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=run
[[ ${1:-} == --test ]] && MODE=test

# What the daemon runs: the OCI runtimes, the monitor, CNI plugins (portmap needs iptables), the infra init,
# gpg (verifies simple-signing image signatures: docs/images.md, "Trust"), criu (checkpoint/restore, where the
# kernel allows it: docs/containers.md), a C compiler and glibc's static library for the namespace helper
# (`make helpers`).
PACKAGES=(runc crun conmon containernetworking-plugins catatonit iptables gpg python3-venv criu make gcc libc6-dev)
# What only the tests and the bench use: registries and their tools, containerd to compare with, images,
# skopeo (signs the test images).
if [[ $MODE == test ]]; then
    PACKAGES+=(busybox-static docker-registry docker.io containerd apache2-utils zstd iproute2 openssl curl skopeo)
fi

scripts/apt-install-missing.sh bootstrap "${PACKAGES[@]}"

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
# The daemon alone: its runtime dependencies (setup.py generates the gRPC code during the install). Tests:
# the dev and tracing extras too, and `make proto` (grpcio-tools) whenever proto/ changes.
hash=$(sha256sum pyproject.toml setup.py | sha256sum | cut -c1-16)
if [[ ! -e .venv/.installed-test-$hash && ! ( $MODE == run && -e .venv/.installed-run-$hash ) ]]; then
    .venv/bin/pip install -q -U pip
    if [[ $MODE == test ]]; then
        .venv/bin/pip install -q -e '.[dev,tracing]'
    else
        .venv/bin/pip install -q -e .
    fi
    rm -f .venv/.installed-*
    touch ".venv/.installed-$MODE-$hash"
fi

if [[ $MODE == test ]]; then
    make -s proto
fi
make -s helpers

if ! compgen -G "/etc/cni/net.d/*.conf*" >/dev/null; then
    install -D -m 0644 contrib/cni/10-pycrio-bridge.conflist /etc/cni/net.d/10-pycrio-bridge.conflist
    echo "bootstrap: installed the default CNI config /etc/cni/net.d/10-pycrio-bridge.conflist"
fi
