#!/usr/bin/env bash
# `make vm-test`: boot the systemd + cgroup v2 guest (see build-image.sh) under qemu, let it run the in-VM
# suite against pycrio as a systemd service, and exit with the suite's status.
#
#   VM_RESULTS   where pytest's output, pycrio's journal and the console log land (default .vm-results)
#   VM_TIMEOUT   seconds the whole boot + suite + poweroff may take (default 1500)
#   VM_TESTS     pytest arguments inside the guest (default: DEFAULT_TESTS below)
#   VM_SHELL=1   boot to a root login on this terminal instead of running the suite
set -euo pipefail

# One function, parsed whole before it runs: editing this file during a run cannot derail it.
main() {
    here=$(cd "$(dirname "$0")" && pwd)
    repo=$(cd "$here/../.." && pwd)
    results=${VM_RESULTS:-$repo/.vm-results}
    timeout_s=${VM_TIMEOUT:-1500}

    HOST_PACKAGES=(qemu-system-x86 mmdebstrap cpio e2fsprogs busybox-static)
    "$repo/scripts/apt-install-missing.sh" vm "${HOST_PACKAGES[@]}" || true
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "vm: qemu-system-x86_64 is missing and could not be installed (apt-get install qemu-system-x86);" \
            "make vm-test needs it to boot the cgroup v2 guest" >&2
        exit 2
    fi

    image=$("$here/build-image.sh")

    rm -rf "$results"
    mkdir -p "$results"
    # The in-VM suite, and the contract suites that need systemd, cgroup v2 or crun (which refuses this host).
    DEFAULT_TESTS="tests/contract/test_systemd_units.py tests/contract/test_oci_runtime.py"
    DEFAULT_TESTS+=" tests/contract/test_container_monitor.py tests/vm"
    echo "${VM_TESTS:-$DEFAULT_TESTS}" >"$results/args"

    cmdline="console=ttyS0 root=/dev/vda rw systemd.unified_cgroup_hierarchy=1 panic=-1 loglevel=4"
    serial=(-serial "file:$results/console.log")
    if [[ ${VM_SHELL:-} == 1 ]]; then
        serial=(-serial mon:stdio)
        timeout_s=0
    else
        cmdline+=" pycrio.vmtest=1"
    fi

    # Software emulation: KVM on this kind of host runs only PVM-aware guest kernels (../shared/MACHINE.md).
    qemu=(qemu-system-x86_64 -accel tcg,thread=multi,tb-size=256 -cpu max -smp 2 -m 2G
          -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$cmdline"
          -drive "file=$image/rootfs.raw,format=raw,if=virtio" -snapshot -nic none -display none -no-reboot
          -virtfs "local,path=$repo,mount_tag=src,security_model=none,readonly=on"
          -virtfs "local,path=$results,mount_tag=results,security_model=none"
          "${serial[@]}")
    echo "vm: booting (results in $results)"
    started=$SECONDS
    if [[ ${VM_SHELL:-} == 1 ]]; then
        exec "${qemu[@]}"
    fi
    set +e
    timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null
    qemu_status=$?
    set -e
    echo "vm: qemu exited with $qemu_status after $((SECONDS - started)) s"
    for log in pytest.log; do
        [[ -f $results/$log ]] && cat "$results/$log"
    done
    if [[ $qemu_status == 124 ]]; then
        echo "vm: timed out after $timeout_s s; the console is in $results/console.log" >&2
        exit 124
    fi
    if [[ ! -f $results/status ]]; then
        echo "vm: the guest reported no status; the console is in $results/console.log" >&2
        tail -40 "$results/console.log" >&2 || true
        exit 1
    fi
    status=$(cat "$results/status")
    echo "vm: in-VM suite exited with $status"
    exit "$status"
}

main "$@"
