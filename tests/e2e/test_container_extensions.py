"""CDI devices, OCI hooks and the container log size limit through the real daemon, runc and conmon.

The CDI specs point at a device node the test makes (`mknod`, char 1:3 like /dev/null) and a directory to
mount; the hook is a shell script on the host that runc runs and that appends what it was given to a marker
file. Pods use the host's network, so no CNI is involved.
"""

import json
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import TEST_CGROUP, marker, remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    force_delete_runc_containers,
    pod_config,
    remove_pods,
    seed_busybox_image,
    status,
    wait_until,
)
from tests.e2e.daemon import Daemon

LOG_SIZE_MAX = 8192


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    work: Path
    logs: Path
    device: Path
    hook_marker: Path
    pods: list[str]

    def pod(self, name: str, **annotations: str) -> tuple[str, pb.PodSandboxConfig]:
        config = pod_config(
            f"{name}-{uuid.uuid4().hex[:6]}",
            self.logs,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE)
            ),
        )
        config.annotations.update(annotations)
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config

    def create(self, pod: tuple[str, pb.PodSandboxConfig], config: pb.ContainerConfig) -> str:
        request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
        container_id: str = self.client.runtime.CreateContainer(request).container_id
        return container_id

    def run(self, pod: tuple[str, pb.PodSandboxConfig], config: pb.ContainerConfig) -> str:
        container_id = self.create(pod, config)
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        return container_id

    def exec(self, container_id: str, script: str) -> pb.ExecSyncResponse:
        response: pb.ExecSyncResponse = self.client.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=container_id, cmd=["/bin/sh", "-c", script], timeout=30)
        )
        return response


def write_cdi_specs(static: Path, dynamic: Path, device: Path, share: Path) -> None:
    static.mkdir()
    dynamic.mkdir()
    (static / "pctest-null.json").write_text(json.dumps({
        "cdiVersion": "0.6.0",
        "kind": "pctest.example.com/null",
        "containerEdits": {"env": ["PCTEST_VENDOR=example"],
                           "mounts": [{"hostPath": str(share), "containerPath": "/opt/pctest",
                                       "options": ["ro", "rbind", "nosuid", "nodev"]}]},
        "devices": [{"name": "dev0", "containerEdits": {
            "deviceNodes": [{"path": "/dev/pctest0", "hostPath": str(device), "permissions": "rw"}],
            "env": ["PCTEST_DEVICE=dev0"]}}],
    }))  # fmt: skip
    # A YAML spec in the later directory: its dev1 is what the annotation asks for.
    (dynamic / "pctest-null.yaml").write_text(
        "cdiVersion: 1.1.0\n"
        "kind: pctest.example.com/yaml\n"
        "devices:\n"
        "  - name: dev1\n"
        "    containerEdits:\n"
        "      env: [PCTEST_YAML=dev1]\n"
        "      deviceNodes:\n"
        f"        - {{path: /dev/pctest1, hostPath: {device}, type: c, major: 1, minor: 3}}\n"
    )


def write_hooks(hooks: Path, script: Path, hook_marker: Path) -> None:
    hooks.mkdir()
    script.write_text(f'#!/bin/sh\n{{ printf "%s " "$1"; cat; echo; }} >> {hook_marker}\n')
    script.chmod(0o755)
    when_traced = {"annotations": {r"^pctest\.example\.com/trace$": "^on$"}}
    (hooks / "50-pctest-trace.json").write_text(json.dumps({
        "version": "1.0.0",
        "hook": {"path": str(script), "args": ["pctest-hook", "created"]},
        "when": when_traced, "stages": ["prestart"],
    }))  # fmt: skip
    (hooks / "60-pctest-stop.json").write_text(json.dumps({
        "version": "1.0.0",
        "hook": {"path": str(script), "args": ["pctest-hook", "stopped"]},
        "when": when_traced, "stages": ["poststop"],
    }))  # fmt: skip
    (hooks / "90-pctest-broken.json").write_text('{"version": "1.0.0", "hook": ')
    (hooks / "70-pctest-never.json").write_text(json.dumps({
        "version": "1.0.0",
        "hook": {"path": str(script), "args": ["pctest-hook", "never"]},
        "when": {"commands": ["^/no/such/command$"]}, "stages": ["prestart"],
    }))  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pctest-extensions")
    root = work / "pycrio" / "root"
    seed_busybox_image(root, work)
    device = work / "pctest-null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    device.chmod(0o666)
    share = work / "share"
    share.mkdir()
    (share / "hello").write_text("from the CDI mount\n")
    write_cdi_specs(work / "etc-cdi", work / "run-cdi", device, share)
    hook_marker = work / "hooks.log"
    write_hooks(work / "hooks.d", work / "pctest-hook.sh", hook_marker)
    (work / "net.d").mkdir()
    parent = f"/{TEST_CGROUP}/ext-{uuid.uuid4().hex[:6]}"
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{work / "net.d"}"',
            f'pods.default_cgroup_parent="{parent}"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            f'runtime.cdi_spec_dirs=["{work / "etc-cdi"}", "{work / "run-cdi"}"]',
            f'runtime.hooks_dir=["{work / "hooks.d"}"]',
            f"runtime.log_size_max={LOG_SIZE_MAX}",
        ],
    ).start()
    env = Env(daemon, daemon.client, work, work / "logs", device, hook_marker, [])
    env.logs.mkdir()
    try:
        yield env
    finally:
        remove_pods(env.client, env.pods)
        daemon.stop()
        listed = force_delete_runc_containers(work / "runc")
        left = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not listed, f"runc containers left: {listed}"
        assert not left, f"cgroups left: {left}"


def test_a_broken_hook_file_is_reported_at_start_up_and_not_used(env: Env) -> None:
    # First in this module: no container has been created yet, so only start-up can have read the file.
    lines = [line for line in env.daemon.log().splitlines() if "90-pctest-broken.json" in line]
    assert lines and "not JSON" in lines[0], "the daemon names the broken file and why when it starts"


def sleeper(name: str, **fields: object) -> pb.ContainerConfig:
    return container_config(name, ["/bin/sleep", marker(40)], **fields)


def test_cdi_devices_env_and_mounts_reach_a_running_container(env: Env) -> None:
    pod = env.pod("cdi")
    config = sleeper("cdi", CDI_devices=[pb.CDIDevice(name="pctest.example.com/null=dev0")],
                     annotations={"cdi.k8s.io/pctest": "pctest.example.com/yaml=dev1"})  # fmt: skip
    container_id = env.run(pod, config)
    devices = env.exec(container_id, "stat -c '%n %F %t:%T' /dev/pctest0 /dev/pctest1")
    assert devices.exit_code == 0, devices.stderr
    assert devices.stdout.decode().splitlines() == [
        "/dev/pctest0 character special file 1:3",
        "/dev/pctest1 character special file 1:3",
    ]
    written = env.exec(container_id, "echo data > /dev/pctest0 && head -c 4 /dev/pctest1 | wc -c")
    assert written.exit_code == 0 and written.stdout.decode().strip() == "0", written.stderr
    environment = env.exec(container_id, "echo $PCTEST_VENDOR $PCTEST_DEVICE $PCTEST_YAML")
    assert environment.stdout.decode().split() == ["example", "dev0", "dev1"]
    mounted = env.exec(container_id, "cat /opt/pctest/hello; touch /opt/pctest/new 2>&1 || echo refused")
    assert mounted.stdout.decode().splitlines()[0] == "from the CDI mount"
    assert "refused" in mounted.stdout.decode(), "the CDI mount is read-only"
    verbose = json.loads(status(env.client, container_id, verbose=True).info["info"])
    rules = verbose["runtimeSpec"]["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules


def test_an_unknown_or_malformed_cdi_device_is_refused_naming_it(env: Env) -> None:
    pod = env.pod("cdi-bad")
    with pytest.raises(grpc.RpcError) as unknown:
        env.create(pod, sleeper("unknown", CDI_devices=[pb.CDIDevice(name="pctest.example.com/null=dev9")]))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "pctest.example.com/null=dev9" in (unknown.value.details() or "")
    with pytest.raises(grpc.RpcError) as malformed:
        env.create(pod, sleeper("malformed", annotations={"cdi.k8s.io/x": "dev9"}))
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dev9" in (malformed.value.details() or "")
    listed = env.client.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod[0]))
    )
    assert not listed.containers


def hook_lines(env: Env, container_id: str) -> list[str]:
    if not env.hook_marker.exists():
        return []
    return [
        line.split(" ", 1)[0] for line in env.hook_marker.read_text().splitlines() if container_id in line
    ]


def test_hooks_run_at_their_stages_when_their_conditions_match(env: Env) -> None:
    pod = env.pod("hooks")
    traced = env.create(pod, sleeper("traced", annotations={"pctest.example.com/trace": "on"}))
    plain = env.create(pod, sleeper("plain"))
    assert hook_lines(env, traced) == ["created"], "the prestart hook ran (as createRuntime) during create"
    state = json.loads(env.hook_marker.read_text().splitlines()[0].split(" ", 1)[1])
    assert state["id"] == traced and state["annotations"]["pctest.example.com/trace"] == "on"
    for container_id in (traced, plain):
        env.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
        env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))
    assert hook_lines(env, traced) == ["created", "stopped"], "the poststop hook ran when runc deleted it"
    assert hook_lines(env, plain) == [], "a container without the annotation runs no hook"


def log_numbers(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"F line-(\d+)-", path.read_text())] if path.exists() else []


def test_the_log_stays_under_the_limit_and_kubelet_rotation_keeps_working(env: Env) -> None:
    pod = env.pod("logs")
    filler = "x" * 100
    script = f"i=0; while true; do echo line-$i-{filler}; i=$((i+1)); sleep 0.01; done"
    container_id = env.run(pod, container_config("chatty", ["/bin/sh", "-c", script]))
    log = Path(status(env.client, container_id).status.log_path)
    # Well past the limit: the file has been started afresh, so its first lines are gone.
    wait_until(lambda: (n := log_numbers(log)) and n[0] > 0 and n[-1] > 200, what="the log to pass its limit")
    assert log.stat().st_size <= LOG_SIZE_MAX
    rotated = log.with_name(log.name + f".{int(time.time())}")
    log.rename(rotated)  # the kubelet's rotation: rename, then ReopenContainerLog
    env.client.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=container_id))
    last_rotated = log_numbers(rotated)[-1]
    wait_until(
        lambda: (n := log_numbers(log)) and n[0] > last_rotated + 100, what="the new log to start afresh"
    )
    assert log.stat().st_size <= LOG_SIZE_MAX and rotated.stat().st_size <= LOG_SIZE_MAX
    numbers = log_numbers(log)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "no line lost or repeated in a file"
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
