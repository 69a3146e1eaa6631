"""The metric names cri-tools' pkg/validate/pod.go checks (facts copied from cri-tools)."""

# cri-tools' pkg/validate (pod.go) expects these descriptors, with values in ListPodSandboxMetrics for a pod
# with a running container (the set the kubelet shows with cri-o and cAdvisor)...
CRI_TOOLS_EXPECTED = {
    "container_blkio_device_usage_total", "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
    "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
    "container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total",
    "container_fs_usage_bytes", "container_fs_writes_bytes_total", "container_fs_writes_total",
    "container_hugetlb_max_usage_bytes", "container_hugetlb_usage_bytes", "container_last_seen",
    "container_memory_cache", "container_memory_failcnt", "container_memory_failures_total",
    "container_memory_kernel_usage", "container_memory_mapped_file", "container_memory_max_usage_bytes",
    "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
    "container_memory_working_set_bytes", "container_network_receive_bytes_total",
    "container_network_receive_errors_total", "container_network_receive_packets_dropped_total",
    "container_network_receive_packets_total", "container_network_transmit_bytes_total",
    "container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total",
    "container_network_transmit_packets_total", "container_oom_events_total",
    "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
    "container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
    "container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
    "container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_quota",
    "container_spec_cpu_shares", "container_spec_memory_limit_bytes",
    "container_spec_memory_reservation_limit_bytes", "container_spec_memory_swap_limit_bytes",
    "container_start_time_seconds", "container_threads", "container_threads_max", "container_ulimits_soft",
}  # fmt: skip
# ...except those it lists as not yet implemented by every runtime...
CRI_TOOLS_UNIMPLEMENTED = {
    "container_hugetlb_max_usage_bytes", "container_hugetlb_usage_bytes",
    "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
    "container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
    "container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
    "container_spec_cpu_quota", "container_spec_memory_reservation_limit_bytes", "container_ulimits_soft",
}  # fmt: skip
# ...and those whose values may be missing (block I/O accounting).
CRI_TOOLS_OPTIONAL_VALUES = {
    "container_blkio_device_usage_total", "container_fs_reads_bytes_total", "container_fs_reads_total",
    "container_fs_writes_bytes_total", "container_fs_writes_total",
}  # fmt: skip


def missing_metric_values(descriptors: dict[str, int], found: dict[str, int]) -> list[str]:
    """cri-tools' rule: every descriptor (name -> label count) has a value with as many labels, except
    the optional and unimplemented ones. `found` is name -> label count of the first value seen."""
    problems = []
    for name, labels in descriptors.items():
        if name in CRI_TOOLS_OPTIONAL_VALUES or name in CRI_TOOLS_UNIMPLEMENTED:
            continue
        if name not in found:
            problems.append(f"{name}: no value")
        elif found[name] != labels:
            problems.append(f"{name}: {found[name]} label values for {labels} keys")
    return problems
