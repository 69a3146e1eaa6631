#!/usr/bin/env bash
# Make a fresh Debian 12 machine ready to run and test pycrio: host packages, the venv, generated code,
# a default CNI config. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc crun conmon containernetworking-plugins catatonit busybox-static docker-registry
          docker.io iptables iproute2 apache2-utils zstd python3-venv containerd
          openssl curl
          gpg skopeo)
# gpg verifies simple-signing image signatures (docs/images.md, "Trust"); skopeo signs the test images.

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -e $stamp ]]; then
    .venv/bin/pip install -q -U pip
    .venv/bin/pip install -q -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

make -s proto

if ! compgen -G "/etc/cni/net.d/*.conf*" >/dev/null; then
    install -D -m 0644 contrib/cni/10-pycrio-bridge.conflist /etc/cni/net.d/10-pycrio-bridge.conflist
    echo "bootstrap: installed the default CNI config /etc/cni/net.d/10-pycrio-bridge.conflist"
fi
