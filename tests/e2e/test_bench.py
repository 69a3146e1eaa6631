"""`python -m bench --quick` end to end: containerd measured for real, pycrio's rows reported as far as it
serves them, rounds that alternate the runtimes, and nothing left behind, also after an interrupt. Speeds
are printed, never asserted."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import cleanup, cni, images, procstat
from bench.registry import LocalRegistry

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.root

CONTAINERD_KEYS = {
    "rss.idle",
    "pod_lifecycle.c1",
    "pod_lifecycle.c8",
    "pod_lifecycle.c1.run",
    "container_lifecycle.c1",
    "container_lifecycle.c8",
    "container_lifecycle.c8.start",
    "pod_container_start.c1",
    "pod_container_start.c8",
    "exec_sync",
    "pull_cold",
    "fleet.populate",
    "fleet.list_pods",
    "fleet.list_containers",
    "fleet.list_stats",
    "rss.fleet",
    "rss.fleet_helpers",
    "rss.fleet_infra",
    "fleet.teardown",
    "cpu.daemon",
    "cpu.idle_0",
    "density.create",
    "cpu.idle_n",
    "density.rss",
    "density.pss",
}


def bench_command(tmp_path: Path, *args: str) -> list[str]:
    (tmp_path / "work").mkdir(exist_ok=True)
    return [
        sys.executable, "-m", "bench", "--quick",
        "--cache-dir", str(tmp_path / "cache"),
        "--tmp-dir", str(tmp_path / "work"),
        *args,
    ]  # fmt: skip


def assert_nothing_left(tmp_path: Path, run_id: str) -> None:
    network = f"{cni.NETWORK_PREFIX}-{run_id}"
    mine = [info for info in procstat.processes() if str(tmp_path / "work") in info.cmdline]
    assert not mine, [(info.pid, info.name) for info in mine]
    assert not cleanup.mounts_under(tmp_path, Path("/proc/self/mountinfo").read_text())
    assert list((tmp_path / "work").iterdir()) == []
    leftover_cgroups = [path for path in Path("/sys/fs/cgroup").glob(f"*/pcbench-{run_id}-*")]
    assert not leftover_cgroups
    assert not Path(f"/sys/class/net/{cni.BRIDGE_PREFIX}{run_id}").exists()
    assert not list(cni.RESULTS_CACHE.glob(f"{network}-*"))
    assert not list(Path("/run").glob(f"pcb-{run_id}-*"))
    theirs = [info for info in procstat.processes() if f"/run/pcb-{run_id}-" in info.cmdline]
    assert not theirs, [(info.pid, info.name) for info in theirs]
    for save in ("iptables-save", "ip6tables-save"):
        rules = subprocess.run([save], capture_output=True, text=True, check=True, timeout=30).stdout
        ours = [
            line for line in rules.splitlines() if network in line or f"{cni.BRIDGE_PREFIX}{run_id}" in line
        ]
        assert not ours, ours


def run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        bench_command(tmp_path, "--json", str(report_path), *args),
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(result.stdout)  # the numbers, for whoever reads the test log
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(report_path.read_text())
    run_id = report["meta"]["run_id"]
    assert report["meta"]["cni"]["bridge"] == f"{cni.BRIDGE_PREFIX}{run_id}"  # a bridge of the run's own
    assert_nothing_left(tmp_path, run_id)
    return report, result.stdout


def test_quick_run_against_containerd_measures_every_row(tmp_path: Path) -> None:
    report, stdout = run_bench(tmp_path, "--runtimes", "containerd", "--idle-seconds", "1")
    assert len(report["rounds"]) == 1  # --quick is one round unless --rounds says otherwise
    containerd = report["rounds"][0]["runtimes"]["containerd"]
    assert containerd["version"].startswith("containerd")
    rows = {row["key"]: row for row in containerd["rows"]}
    assert set(rows) >= CONTAINERD_KEYS
    not_ok = {key: (row["status"], row["detail"]) for key, row in rows.items() if row["status"] != "ok"}
    assert not not_ok
    assert rows["pod_lifecycle.c8"]["latency"]["count"] == 8
    assert rows["exec_sync"]["latency"]["count"] == 20
    assert rows["pull_cold"]["extra"]["MiB/s"] > 0
    assert rows["fleet.list_containers"]["detail"] == "30 items"
    assert rows["rss.fleet_helpers"]["extra"]["processes"] == 10  # one shim per pod
    assert rows["rss.fleet_infra"]["extra"]["processes"] == 10  # one catatonit -P per pod
    assert rows["rss.idle"]["value"] > 0
    assert rows["density.create"]["latency"]["count"] == 5
    # The daemon, one shim and one catatonit -P per pod.
    assert rows["density.pss"]["extra"]["processes"] == 11
    assert 0 < rows["density.pss"]["value"] <= rows["density.rss"]["value"]
    assert "ListContainerStats (10x3)" in stdout


def test_pycrio_rows_are_measured_or_reported_unsupported(tmp_path: Path) -> None:
    """pycrio as it stands on this branch: every row measured, or saying why not; the run never crashes."""
    report, _ = run_bench(tmp_path, "--runtimes", "pycrio", "--only", "pod_lifecycle,exec_sync,fleet")
    pycrio = report["rounds"][0]["runtimes"]["pycrio"]
    assert not pycrio["error"], pycrio["error"]
    assert pycrio["version"].startswith("pycrio")
    rows = {row["key"]: row for row in pycrio["rows"]}
    assert {"rss.idle", "pod_lifecycle.c1", "pod_lifecycle.c8", "exec_sync", "cpu.daemon"} <= set(rows)
    # The floor server (bench/floor.py): less than the daemon, and answering the lists with pycrio's bytes.
    assert 0 < rows["floor.rss.idle"]["value"] < rows["rss.idle"]["value"]
    for key in ("fleet.list_pods", "fleet.list_containers"):
        floor = rows[f"floor.{key}"]
        assert floor["status"] == "ok" and floor["detail"] == rows[key]["detail"], (floor, rows[key])
    for row in pycrio["rows"]:
        assert row["status"] in {"ok", "unsupported", "failed"}
        assert row["status"] == "ok" or row["detail"]


def test_rounds_alternate_the_runtimes_and_give_ratios_over_rounds(tmp_path: Path) -> None:
    """Two rounds of both runtimes at a tiny size: the shape of every round and of the summary."""
    report, stdout = run_bench(
        tmp_path,
        "--rounds", "2", "--only", "pod_lifecycle,density", "--density-pods", "2", "--idle-seconds", "1",
    )  # fmt: skip
    rounds = report["rounds"]
    assert [entry["order"] for entry in rounds] == [["pycrio", "containerd"], ["containerd", "pycrio"]]
    endpoints = set()
    for entry in rounds:
        assert entry["seconds"] > 0
        for name, runtime in entry["runtimes"].items():
            assert not runtime["error"], (name, runtime["error"])
            endpoints.add(runtime["endpoint"])
            rows = {row["key"]: row for row in runtime["rows"]}
            assert rows["density.create"]["latency"]["count"] == 2
            assert rows["cpu.idle_0"]["status"] == rows["cpu.idle_n"]["status"] == "ok"
            # The daemon, and per pod its helper(s) and one infra process.
            assert rows["density.rss"]["extra"]["processes"] >= 5
    assert len(endpoints) == 4  # every runtime started afresh in every round
    summary = {row["key"]: row for row in report["ratios"]["rows"]}
    assert report["ratios"]["rounds"] == 2
    for key in ("pod_lifecycle.c1", "pod_lifecycle.c8.run", "density.create", "density.pss"):
        spread = summary[key]["primary"]
        assert len(spread["rounds"]) == 2 and None not in spread["rounds"], (key, spread)
        assert spread["low"] <= spread["median"] <= spread["high"]
    targets = {check["key"]: check for check in report["ratios"]["targets"]}
    assert targets["pod_lifecycle.c1"]["verdict"] in {"met", "not met"}
    assert targets["exec_sync"]["verdict"] == "n/a: no row"
    assert set(report["medians"]) == {"pycrio", "containerd"}
    assert "ratio per round" in stdout and "median over 2 rounds" in stdout


def test_an_interrupted_run_cleans_up(tmp_path: Path) -> None:
    process = subprocess.Popen(
        bench_command(tmp_path, "--runtimes", "containerd", "--only", "fleet"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    run_id = ""
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if " run " in line and not run_id:
                run_id = line.split(" run ", 1)[1].split()[0]
            if "fleet of" in line:
                _wait_for_a_shim_of(run_id)  # interrupt while the run's pods exist, not after the fleet
                process.send_signal(signal.SIGTERM)
                break
        else:
            pytest.fail("the run ended before the fleet: " + "".join(lines[-20:]))
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert run_id
    assert_nothing_left(tmp_path, run_id)


def _wait_for_a_shim_of(run_id: str, timeout: float = 30.0) -> None:
    """Until a containerd shim of this run (its address lies under the run's /run/pcb-<id>-* dir) exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and f"pcb-{run_id}".encode() in cmdline:
                return
        time.sleep(0.02)
    pytest.fail(f"no containerd shim of run {run_id} appeared")


def test_the_bench_registry_serves_what_was_pushed(tmp_path: Path) -> None:
    image = images.build(images.random_spec("registry-test", layers=2, layer_bytes=4096), tmp_path / "cache")
    local = LocalRegistry(tmp_path / "registry").start()
    try:
        reference = local.push(image)
        assert reference == f"{local.host}/pcbench/random:registry-test"
        assert local.push(image) == reference  # blobs already there: only the manifest again
        with httpx.Client(base_url=local.base_url) as http:
            manifest = http.get(
                "/v2/pcbench/random/manifests/registry-test", headers={"Accept": images.MANIFEST_TYPE}
            )
            assert manifest.status_code == 200
            assert manifest.content == image.manifest
            assert manifest.headers["Docker-Content-Digest"] == image.manifest_digest
            for blob in image.blobs():
                fetched = http.get(f"/v2/pcbench/random/blobs/{blob.digest}", follow_redirects=True)
                assert fetched.content == blob.path.read_bytes()
    finally:
        local.stop()
    assert local.process is None
