"""The requests a real kubelet (1.34 and later, cgroupfs driver, standalone) sends, field for field.

Taken from a kubelet v1.36 run against pycrio (see docs/kubelet.md): RunPodSandbox for a Burstable pod,
CreateContainer for one of its containers. What makes them differ from critest's requests: the cgroup
parent is the kubelet's own QoS tree, which it made before the call; `hugepage_limits` name every page size
the node has, with limit 0 when the pod asks for none; the pod carries `linux.resources`; the log path is
`<container>/<attempt>.log` below the pod's log directory, which the kubelet makes itself.
"""

from dataclasses import dataclass
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb

MIB = 1 << 20
# 100m CPU, 64Mi memory: what the kubelet's resource helpers turn a container's limits into.
CPU_SHARES = 102
CPU_QUOTA = 10_000
CPU_PERIOD = 100_000
MEMORY_LIMIT = 64 * MIB


@dataclass(frozen=True)
class KubeletPod:
    name: str
    namespace: str
    uid: str
    qos_parent: str  # the kubelet's QoS cgroup, e.g. /kubepods/burstable
    log_root: Path  # the kubelet's /var/log/pods

    @property
    def cgroup_parent(self) -> str:
        return f"{self.qos_parent}/pod{self.uid}"

    @property
    def log_directory(self) -> Path:
        return self.log_root / f"{self.namespace}_{self.name}_{self.uid}"

    def labels(self) -> dict[str, str]:
        return {
            "io.kubernetes.pod.name": self.name,
            "io.kubernetes.pod.namespace": self.namespace,
            "io.kubernetes.pod.uid": self.uid,
            "component": "kubelet-e2e",
        }

    def sandbox_config(self, attempt: int = 0) -> pb.PodSandboxConfig:
        """RunPodSandbox's config for a static pod (`kubernetes.io/config.source: file`)."""
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=self.name, uid=self.uid, namespace=self.namespace, attempt=attempt
            ),
            hostname=self.name,
            log_directory=str(self.log_directory),
            dns_config=pb.DNSConfig(servers=["127.0.0.53"], searches=["local"], options=["ndots:5"]),
            labels=self.labels(),
            annotations={
                "kubernetes.io/config.hash": self.uid,
                "kubernetes.io/config.seen": "2026-12-07T06:00:00.000000000Z",
                "kubernetes.io/config.source": "file",
            },
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD
                    ),
                    seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined),
                ),
                # The pod's limits: the sum of its containers' (KEP-1287 and pod-level resources).
                resources=pb.LinuxContainerResources(
                    cpu_period=CPU_PERIOD, cpu_quota=CPU_QUOTA, cpu_shares=CPU_SHARES,
                    memory_limit_in_bytes=MEMORY_LIMIT,
                ),
                overhead=pb.LinuxContainerResources(),
            ),
        )  # fmt: skip

    def container_config(
        self, name: str, image: str, command: list[str], attempt: int = 0
    ) -> pb.ContainerConfig:
        """CreateContainer's config; the kubelet has made `<log dir>/<name>/` before the call."""
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image, user_specified_image="busybox:latest"),
            command=command,
            working_dir="",
            envs=[pb.KeyValue(key="KUBERNETES_SERVICE_HOST", value="10.96.0.1")],
            labels={
                "io.kubernetes.container.name": name,
                "io.kubernetes.pod.name": self.name,
                "io.kubernetes.pod.namespace": self.namespace,
                "io.kubernetes.pod.uid": self.uid,
            },
            annotations={
                "io.kubernetes.container.hash": "9c0a1a5e",
                "io.kubernetes.container.restartCount": str(attempt),
                "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
                "io.kubernetes.container.terminationMessagePolicy": "File",
                "io.kubernetes.pod.terminationGracePeriod": "30",
            },
            log_path=f"{name}/{attempt}.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(
                    cpu_period=CPU_PERIOD, cpu_quota=CPU_QUOTA, cpu_shares=CPU_SHARES,
                    memory_limit_in_bytes=MEMORY_LIMIT, oom_score_adj=968,
                    hugepage_limits=[
                        pb.HugepageLimit(page_size="2MB", limit=0),
                        pb.HugepageLimit(page_size="1GB", limit=0),
                    ],
                ),
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD
                    ),
                    seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined),
                    masked_paths=["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                                  "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                  "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                                  "/sys/devices/virtual/powercap"],
                    readonly_paths=["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
                ),
            ),
        )  # fmt: skip
