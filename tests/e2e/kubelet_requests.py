"""The requests a real kubelet (1.34 and later, cgroupfs driver, standalone) sends, field for field.

As a kubelet v1.36 sent them to pycrio for a Burstable static pod (recorded from that run, see
docs/kubelet.md): RunPodSandbox, and CreateContainer for one of its containers. How they differ from
critest's: the cgroup parent is the kubelet's own QoS tree, made before the call; `hugepage_limits` name
every page size the node has, with limit 0 when the pod asks for none; the pod carries `linux.resources`;
the log path is `<container>/<attempt>.log` below the pod's log directory, which the kubelet makes itself;
it bind-mounts its own files over /etc/hosts and /dev/termination-log; the image is named by the id
PullImage returned.
"""

from dataclasses import dataclass
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb

MIB = 1 << 20
# requests 50m CPU, limits 100m CPU and 64Mi memory, as the kubelet's resource helpers turn them into.
CPU_SHARES = 51
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
    kubelet_root: Path  # the kubelet's --root-dir

    @property
    def cgroup_parent(self) -> str:
        return f"{self.qos_parent}/pod{self.uid}"

    @property
    def log_directory(self) -> Path:
        return self.log_root / f"{self.namespace}_{self.name}_{self.uid}"

    @property
    def pod_dir(self) -> Path:
        return self.kubelet_root / "pods" / self.uid

    def make_files(self, container: str) -> list[pb.Mount]:
        """The kubelet's files for a container (made before CreateContainer) and how it mounts them."""
        hosts, volume = (
            self.pod_dir / "etc-hosts",
            self.pod_dir / "volumes" / "kubernetes.io~empty-dir" / "work",
        )
        termination = self.pod_dir / "containers" / container / "e489aed5"
        volume.mkdir(parents=True, exist_ok=True)
        termination.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text(f"# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.0.0.2\t{self.name}\n")
        termination.touch()
        return [
            pb.Mount(container_path="/empty-dir", host_path=str(volume)),
            pb.Mount(container_path="/etc/hosts", host_path=str(hosts)),
            pb.Mount(container_path="/dev/termination-log", host_path=str(termination)),
        ]

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
            dns_config=pb.DNSConfig(servers=["10.255.255.53"]),
            port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=8080, host_port=18080)],
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
        self,
        name: str,
        image: str,
        command: list[str],
        attempt: int = 0,
        mounts: list[pb.Mount] | None = None,
    ) -> pb.ContainerConfig:
        """CreateContainer's config; the kubelet has made `<log dir>/<name>/` and the mounted files before
        the call. `image` is the image id PullImage returned."""
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image, user_specified_image="busybox:latest"),
            command=command,
            working_dir="",
            mounts=mounts or [],
            labels={
                "io.kubernetes.container.name": name,
                "io.kubernetes.pod.name": self.name,
                "io.kubernetes.pod.namespace": self.namespace,
                "io.kubernetes.pod.uid": self.uid,
            },
            annotations={
                "io.kubernetes.container.hash": "487f2b5",
                "io.kubernetes.container.ports": '[{"hostPort":18080,"containerPort":8080,"protocol":"TCP"}]',
                "io.kubernetes.container.restartCount": str(attempt),
                "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
                "io.kubernetes.container.terminationMessagePolicy": "File",
                "io.kubernetes.pod.terminationGracePeriod": "30",
            },
            log_path=f"{name}/{attempt}.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(
                    cpu_period=CPU_PERIOD, cpu_quota=CPU_QUOTA, cpu_shares=CPU_SHARES,
                    memory_limit_in_bytes=MEMORY_LIMIT, memory_swap_limit_in_bytes=MEMORY_LIMIT,
                    oom_score_adj=999,
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
                    run_as_user=pb.Int64Value(value=0),  # the image's user, from ImageStatus
                    masked_paths=["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
                                  "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                                  "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                                  "/sys/devices/virtual/powercap"],
                    readonly_paths=["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
                ),
            ),
        )  # fmt: skip
