"""How much work a run does: `--quick` (a couple of minutes) and the default short profile (about 20 minutes).

Each round starts every runtime afresh and runs every workload once; ratios are judged on their median
over rounds, so one noisy minute on a shared machine does not decide a row.
"""

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    name: str
    # Cycles per lifecycle row, at each concurrency level.
    lifecycle_iterations: int
    exec_iterations: int
    # Distinct pull images (each pulled once, cold), their layer count and layer size.
    pull_images: int
    pull_layer_bytes: int
    # The list/stats fleet: pods, containers per pod, calls per list RPC.
    fleet_pods: int
    list_iterations: int
    # Rounds of every runtime (A B, B A, ...) unless --rounds says otherwise.
    rounds: int
    # The density rows: pods of one container made one after the other, and the idle CPU window.
    density_pods: int
    idle_seconds: float
    pull_layers: int = 8
    fleet_containers_per_pod: int = 3
    concurrency: tuple[int, ...] = (1, 8)
    # Untimed cycles before each timed batch (the first call may pull the pause image, fill caches).
    warmup: int = 1
    # Calls of ListContainerStats when they differ from list_iterations (--list-calls leaves stats short:
    # a containerd ListContainerStats of 300 containers takes about 0.5 s).
    stats_iterations: int | None = None


QUICK = Profile(
    name="quick",
    lifecycle_iterations=8,
    exec_iterations=20,
    pull_images=1,
    pull_layer_bytes=4 * MIB,
    fleet_pods=10,
    list_iterations=10,
    rounds=1,
    density_pods=5,
    idle_seconds=10.0,
)

SHORT = Profile(
    name="short",
    lifecycle_iterations=40,
    exec_iterations=100,
    pull_images=3,
    pull_layer_bytes=25 * MIB,
    fleet_pods=100,
    list_iterations=50,
    rounds=3,
    density_pods=50,
    idle_seconds=30.0,
)
