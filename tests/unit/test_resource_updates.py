"""UpdateContainerResources keeps what the request leaves unset (domain/container_config.py), as containerd
and cri-o do: the kubelet's CPU manager updates the cpuset alone."""

from domain.container_config import HugepageLimit, Resources

CURRENT = Resources(
    cpu_period=100_000,
    cpu_quota=20_000,
    cpu_shares=102,
    memory_limit_in_bytes=128 << 20,
    memory_swap_limit_in_bytes=128 << 20,
    oom_score_adj=999,
    cpuset_cpus="0-1",
    hugepage_limits=(HugepageLimit("2MB", 0), HugepageLimit("1GB", 0)),
    unified=(("memory.high", "max"),),
)


def test_a_cpuset_alone_changes_only_the_cpuset() -> None:
    assert CURRENT.updated_by(Resources(cpuset_cpus="1")) == Resources(
        **{**CURRENT.__dict__, "cpuset_cpus": "1"}
    )


def test_a_new_memory_limit_brings_its_own_swap_or_none() -> None:
    raised = CURRENT.updated_by(Resources(memory_limit_in_bytes=256 << 20))
    assert (raised.memory_limit_in_bytes, raised.memory_swap_limit_in_bytes) == (256 << 20, 0)
    both = CURRENT.updated_by(Resources(memory_limit_in_bytes=256 << 20, memory_swap_limit_in_bytes=-1))
    assert (both.memory_limit_in_bytes, both.memory_swap_limit_in_bytes) == (256 << 20, -1)
    assert both.cpu_quota == 20_000


def test_hugepage_limits_and_unified_keys_are_replaced_one_by_one() -> None:
    changed = CURRENT.updated_by(
        Resources(hugepage_limits=(HugepageLimit("2MB", 4 << 20),), unified=(("pids.max", "100"),))
    )
    assert changed.hugepage_limits == (HugepageLimit("2MB", 4 << 20), HugepageLimit("1GB", 0))
    assert dict(changed.unified) == {"memory.high": "max", "pids.max": "100"}


def test_an_empty_update_changes_nothing() -> None:
    assert CURRENT.updated_by(Resources()) == CURRENT
