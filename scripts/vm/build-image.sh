#!/usr/bin/env bash
# Build the cgroup v2 + systemd test VM (a Debian 13 guest for `make vm-test`) from Debian packages, once per
# set of inputs. Prints the directory holding vmlinuz, initrd.img and rootfs.raw.
#
# Cached under $PYCRIO_VM_CACHE (/var/tmp/pycrio-vm) by a hash of this directory's files and the Python
# requirements: a change to either builds a new image. pycrio's own source is not baked in (the VM mounts
# it over virtio-9p).
# The VM has no network, so pycrio's Python dependencies are installed into the image here, from PyPI.
set -euo pipefail

# One function, parsed whole before it runs: editing this file during a build cannot derail it.
main() {
    here=$(cd "$(dirname "$0")" && pwd)
    repo=$(cd "$here/../.." && pwd)
    cache=${PYCRIO_VM_CACHE:-/var/tmp/pycrio-vm}
    PY=${PY:-$repo/.venv/bin/python}

    # The guest's Python packages: pycrio's runtime dependencies and the in-VM suite's (pyproject.toml).
    requirements=$("$PY" - "$repo/pyproject.toml" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["vm"]))
PYEOF
    )
    key=$( (cat "$here"/build-image.sh "$here"/module-order.py "$here"/guest/*; echo "$requirements") |
        sha256sum | cut -c1-16)
    out=$cache/$key
    if [[ -e $out/done ]]; then
        echo "$out"
        exit 0
    fi

    # Debian packages of the guest: systemd as PID 1, the runtimes pycrio drives, CNI, the test registry, and
    # the dynamic busybox the test images are made from.
    PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,iproute2,iptables,nftables,runc,crun,conmon,
    PACKAGES+=containernetworking-plugins,catatonit,python3,busybox,procps,util-linux,docker-registry,e2fsprogs
    # CRIU for checkpoint/restore (runc checkpoint and restore call it; docs/containers.md).
    PACKAGES+=,criu,libcriu2

    mkdir -p "$cache"
    work=$(mktemp -d "$cache/build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    trap 'exit 1' INT TERM
    rootfs=$work/rootfs
    echo "vm: building the guest image in $work (key $key)" >&2

    # Debian 13: its crun (1.21) can idmap mounts, which user-namespaced pods need (Debian 12's runc and crun
    # cannot). The kernel package of the same suite is downloaded with the bootstrap's own apt configuration.
    suite=trixie
    mkdir -m 755 "$work/debs"
    mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
        --customize-hook='echo pycrio-vm > "$1/etc/hostname"' \
        --customize-hook="$(declare -f download_kernel); download_kernel '$work/debs'" \
        "$suite" "$rootfs" >&2

    # The kernel: Debian's, unpacked from its package (its virtio and ext4 drivers are modules).
    dpkg-deb -x "$work"/debs/linux-image-[0-9]*.deb "$work/kernel"
    # Debian 13 installs modules under /usr/lib/modules (merged /usr), Debian 12 under /lib/modules.
    modules=$(find "$work/kernel" -maxdepth 3 -type d -path '*lib/modules' | head -1)
    version=$(ls "$modules")
    mkdir -p "$rootfs/lib/modules"
    cp -a "$modules/$version" "$rootfs/lib/modules/"
    # Drivers no VM of this kind has (a third of the modules' size).
    (cd "$rootfs/lib/modules/$version/kernel" && rm -rf sound drivers/gpu drivers/media drivers/net/wireless \
        drivers/infiniband drivers/staging drivers/bluetooth net/bluetooth drivers/isdn)
    chroot "$rootfs" depmod "$version"

    # A busybox initramfs that loads the block and file system drivers and switches to the root disk.
    initrd=$work/initrd
    mkdir -p "$initrd"/{bin,dev,proc,sys,newroot,modules}
    cp /bin/busybox "$initrd/bin/busybox"  # busybox-static on the host
    # ext4 checksums its metadata with crc32c, a soft dependency depmod does not list. The 9p transport is
    # loaded here too, so that its channels exist before systemd mounts the shares.
    for module in virtio_pci virtio_blk crc32c_generic crc32c_intel ext4 9pnet_virtio 9p; do
        "$PY" "$here/module-order.py" "$rootfs/lib/modules/$version" "$module"
    done | awk '!seen[$0]++' >"$work/modules.order"
    # busybox's insmod takes plain modules; Debian 13 ships them xz-compressed.
    while read -r path; do
        [[ -n $path ]] || continue  # a module built into this kernel
        name=$(basename "${path%.xz}")
        case $path in
            *.xz) xz -dc "$rootfs/lib/modules/$version/$path" >"$initrd/modules/$name" ;;
            *) cp "$rootfs/lib/modules/$version/$path" "$initrd/modules/$name" ;;
        esac
        echo "$name" >>"$initrd/modules/order"
    done <"$work/modules.order"
    install -m 0755 "$here/guest/initramfs-init" "$initrd/init"
    (cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"

    # Guest configuration: 9p shares, the test runner unit, a root login on the console for debugging.
    install -m 0644 "$here/guest/fstab" "$rootfs/etc/fstab"
    install -m 0644 "$here/guest/pycrio-vm-test.service" "$rootfs/etc/systemd/system/"
    install -m 0755 "$here/guest/pycrio-vm-test" "$rootfs/usr/local/sbin/"
    chroot "$rootfs" systemctl enable pycrio-vm-test.service >&2
    # The package's own registry is not needed (and costs boot time under emulation).
    chroot "$rootfs" systemctl disable docker-registry.service >&2
    chroot "$rootfs" passwd -d root >&2
    mkdir -p "$rootfs/src" "$rootfs/results"
    printf 'pycrio-vm' >"$rootfs/etc/hostname"

    # Python dependencies (runtime + the in-VM suite's) as wheels for the guest's python3, whose version may
    # differ from the host's: pip picks them by the guest's version and ABI tags.
    echo "$requirements" >"$work/requirements.txt"
    guest_py=$(chroot "$rootfs" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    "$PY" -m pip install -q --no-warn-script-location --target "$rootfs/opt/pycrio/lib" \
        --python-version "$guest_py" --implementation cp --abi "cp$guest_py" --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -r "$work/requirements.txt" >&2

    size=$(( $(du -sm "$rootfs" | cut -f1) + 1024 ))
    mkfs.ext4 -q -L pycrio-vm -d "$rootfs" "$work/rootfs.raw" "${size}M" >&2
    cp "$work/kernel/boot/vmlinuz-$version" "$work/vmlinuz"

    mkdir -p "$out"
    mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.raw" "$out/"
    touch "$out/done"
    # Older images of this cache are of no further use.
    find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name 'build.*' -exec rm -rf {} +
    echo "$out"
}

# An mmdebstrap hook: download the suite's kernel package (the versioned one linux-image-amd64 names) into $1.
download_kernel() {
    cd "$1" || return 1
    export APT_CONFIG=$MMDEBSTRAP_APT_CONFIG
    apt-get download -q linux-image-amd64 >&2
    apt-get download -q "$(dpkg-deb -f linux-image-amd64_*.deb Depends | tr ',' '\n' | grep -o 'linux-image-[0-9][^ ]*' | head -1)" >&2
}

main "$@"
