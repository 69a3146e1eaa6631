"""The README quickstart, run as written: every `$` line of its console block, with its output compared to
the one shown under it. crictl runs when it is installed, otherwise tests/crictl_shim.py makes the same
calls with the same JSON files. Only what the test machine must keep private is substituted: the
registry's address (the suite's registry instead of 127.0.0.1:5000), the local port-forward port, the
daemon's socket and dirs, and the pod's log directory."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cri.generated import api_pb2 as pb
from bench.registry import LocalRegistry
from examples.example_registry import publish
from tests.crictl_shim import Crictl
from tests.e2e.containers_support import remove_pods
from tests.e2e.daemon import REPO, Daemon
from tests.fixtures.registry import RunningRegistry, registries_settings
from tests.pod_host import cleanup, cleanup_run_dir, make_test_network, remove_cgroups

BEGIN, END = "<!-- quickstart:", "<!-- end of quickstart -->"
# Commands whose output may lag what was just started (logs, a server still binding, the stats sweep).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RETRIED = ("crictl logs", "crictl exec", "curl", "crictl stats", "crictl ps")


def quickstart_steps(readme: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each `$` line of the README's quickstart block."""
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    lines = block.split("```console", 1)[1].split("```", 1)[0].strip("\n").splitlines()
    steps: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def matches(expected: list[str], actual: str) -> bool:
    """Line by line, cells split on runs of spaces; `<...>` stands for one or more words."""
    got = [line for line in actual.splitlines() if line.strip()]
    if len(got) != len(expected):
        return False
    for want, line in zip(expected, got, strict=True):
        tokens = re.sub(r"<[^>]+>", "\0", want).split()
        pattern = r"\s+".join(".+?".join(map(re.escape, token.split("\0"))) for token in tokens)
        if not re.fullmatch(pattern, line.strip()):
            return False
    return True


@pytest.fixture
def daemon(tmp_path: Path, registry: RunningRegistry) -> Iterator[Daemon]:
    network = make_test_network(tmp_path)
    cgroup_parent = f"/pycrio-test-quickstart/{os.getpid()}"
    running = Daemon(
        tmp_path / "pycrio",
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            *registries_settings(tmp_path, registry),
            f'pods.default_cgroup_parent="{cgroup_parent}"',
        ],
    ).start()
    try:
        yield running
    finally:
        # A step that failed leaves the pod running; its rootfs mount would outlive the daemon.
        pods = running.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
        remove_pods(running.client, [pod.id for pod in pods])
        running.stop()
        cleanup_run_dir(running.workdir / "run")
        cleanup(network)
        remove_cgroups(cgroup_parent)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_readme_quickstart_runs_as_written(
    daemon: Daemon, registry: RunningRegistry, tmp_path: Path
) -> None:
    publish(LocalRegistry(tmp_path / "push", port=int(registry.host.rsplit(":", 1)[1])), tmp_path / "cache")
    port = _free_port()
    substitutions = {
        "127.0.0.1:5000": registry.host,
        "127.0.0.1:8080": f"127.0.0.1:{port}",
        "8080:8080": f"{port}:8080",
        "/tmp/pycrio-quickstart-logs": str(tmp_path / "logs"),
    }

    def private(text: str) -> str:
        for old, new in substitutions.items():
            text = text.replace(old, new)
        return text

    workdir = tmp_path / "work"
    (workdir / "examples").mkdir(parents=True)
    for example in ("pod.json", "container.json"):
        (workdir / "examples" / example).write_text(private((REPO / "examples" / example).read_text()))
    crictl = shutil.which("crictl")
    shim = Crictl(daemon.client, workdir)
    endpoint = f"unix://{daemon.socket}"
    env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=endpoint, IMAGE_SERVICE_ENDPOINT=endpoint)
    variables: dict[str, str] = {}
    background: list[subprocess.Popen[bytes]] = []

    def run(command: str) -> str:
        argv = shlex.split(command)
        if argv[0] == "crictl" and crictl is None:
            return shim.run(argv[1:])
        if command.endswith("&"):
            background.append(subprocess.Popen(argv[:-1], cwd=workdir, env=env, stdout=subprocess.PIPE))
            return background[-1].stdout.readline().decode() if background[-1].stdout else ""
        done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
        return ANSI_ESCAPE.sub("", done.stdout)  # crictl stats clears the screen first

    try:
        steps = quickstart_steps((REPO / "README.md").read_text())
        assert [c.split()[1] for c, _ in steps if c.startswith("crictl")] == [
            "pull",
            "start",
            "ps",
            "logs",
            "exec",
            "port-forward",
            "stats",
            "stop",
            "rm",
            "stopp",
            "rmp",
        ]
        for command, expected in steps:
            assigned = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
            body = assigned.group(2) if assigned else command
            body = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], private(body)).removesuffix(" &")
            body += " &" if command.endswith("&") and (crictl is not None) else ""
            want = [private(line) for line in expected]
            deadline = time.monotonic() + (60 if command.startswith(RETRIED) else 0)
            while True:
                output = run(body)
                if assigned or matches(want, output) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            print(f"$ {body}\n{output}")  # the transcript, shown when the test fails
            if assigned:
                variables[assigned.group(1)] = output.strip()
            else:
                assert matches(want, output), (
                    f"$ {command}\nexpected:\n" + "\n".join(want) + f"\ngot:\n{output}"
                )
    finally:
        shim.close()
        for process in background:
            process.terminate()
