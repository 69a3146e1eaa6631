#!/bin/sh
# Inside the VM (started by pycrio-vm-test.service): run the in-VM suite from the read-only source share and
# put its output, pycrio's journal and the status into the results share.
results=/results
export PYTHONPATH=/src/src:/src:/opt/pycrio/lib
# The source share is read-only: compiled modules go to the (snapshot) root disk instead.
export PYTHONPYCACHEPREFIX=/var/cache/pycrio-pyc
export PYCRIO_VM_GUEST=1
export PATH=/opt/pycrio/lib/bin:$PATH
cd /src || exit 1
args=$(cat "$results/args" 2>/dev/null || echo tests/vm)
echo "pycrio-vm-test: $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), running pytest $args"
# shellcheck disable=SC2086
python3 -m pytest -p no:cacheprovider -ra -v --junitxml="$results/junit.xml" $args >"$results/pytest.log" 2>&1
status=$?
journalctl --no-pager -o short-precise -u 'pycrio*' >"$results/pycrio-journal.txt" 2>&1
journalctl --no-pager -o short-precise -b >"$results/journal.txt" 2>&1
echo "$status" >"$results/status"
echo "pycrio-vm-test: pytest exited with $status"
