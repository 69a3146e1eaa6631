#!/usr/bin/env bash
# Start a docker daemon for testcontainers when none answers (no systemd here to do it).
# Host networking only: the test registries listen on 127.0.0.1.
set -euo pipefail
SOCK=/var/run/docker.sock
if docker -H "unix://$SOCK" info >/dev/null 2>&1; then
    exit 0
fi
mkdir -p /var/log
nohup dockerd --iptables=false --ip-masq=false --bridge=none --host "unix://$SOCK" \
    --pidfile /run/pycrio-dockerd.pid >>/var/log/pycrio-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    if docker -H "unix://$SOCK" info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 0.5
done
echo "start-dockerd: dockerd did not come up; see /var/log/pycrio-dockerd.log" >&2
tail -20 /var/log/pycrio-dockerd.log >&2 || true
exit 1
