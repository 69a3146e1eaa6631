"""NRI in the domain: event masks as upstream lays them out, merging the adjustments of several plugins
(conflicts, removals, what the next plugin sees), writing an adjustment into an OCI spec, and the relay's
rules (order, failures, the synchronization gate) against the in-memory plugins."""

import threading
from typing import Any

import pytest

from domain.container_config import Resources
from domain.errors import FailedPrecondition, InvalidArgument, Unavailable
from domain.nri import (
    AdjustmentMerger,
    NriAdjustment,
    NriContainer,
    NriDevice,
    NriEvent,
    NriHook,
    NriMount,
    NriPod,
    NriReply,
    NriResources,
    NriRlimit,
    NriUpdate,
    UpdateMerger,
    subscribed_events,
)
from domain.nri_relay import NriRelay
from domain.nri_spec import apply_adjustment, container_from_spec, cri_resources
from tests.fakes.nri import FakeNriPlugin, FakeNriPlugins

POD = NriPod(id="p")
CONTAINER = NriContainer(id="c", pod_sandbox_id="p", name="app", env=("KEEP=1", "DROP=1"))


def test_an_event_mask_uses_upstreams_bits_and_zero_means_every_event() -> None:
    # What containerd/nri's stub sends for a plugin handling the seven pod and container events critest uses.
    pod_events = {NriEvent.RUN_POD_SANDBOX, NriEvent.STOP_POD_SANDBOX, NriEvent.REMOVE_POD_SANDBOX}
    container_events = {NriEvent.CREATE_CONTAINER, NriEvent.START_CONTAINER}
    container_events |= {NriEvent.STOP_CONTAINER, NriEvent.REMOVE_CONTAINER}
    assert subscribed_events(0x62F) == pod_events | container_events
    assert subscribed_events(0) == set(NriEvent)
    with pytest.raises(InvalidArgument, match="unknown events"):
        subscribed_events(1 << 20)


def test_plugins_adjust_in_turn_and_the_next_one_sees_the_container_adjusted() -> None:
    merger = AdjustmentMerger(CONTAINER)
    merger.add(NriAdjustment(env=(("ADDED", "1"), ("-DROP", "")), annotations=(("a", "1"),)), "10-first")
    assert merger.container.env == ("KEEP=1", "ADDED=1")
    merger.add(
        NriAdjustment(annotations=(("b", "2"),), resources=NriResources(memory_limit=1 << 26)), "20-second"
    )
    merged = merger.merged()
    assert dict(merged.env) == {"ADDED": "1", "-DROP": ""}
    assert dict(merged.annotations) == {"a": "1", "b": "2"}
    assert merged.resources == NriResources(memory_limit=1 << 26)


A = NriAdjustment


@pytest.mark.parametrize(
    "first, second, what",
    [
        (A(annotations=(("k", "1"),)), A(annotations=(("-k", ""),)), "annotation 'k'"),
        (A(mounts=(NriMount("/m"),)), A(mounts=(NriMount("/m"),)), "mount '/m'"),
        (A(devices=(NriDevice("/dev/x", "c"),)), A(devices=(NriDevice("/dev/x", "c"),)), "device '/dev/x'"),
        (A(resources=NriResources(cpu_shares=2)), A(resources=NriResources(cpu_shares=3)), "cpu_shares"),
        (A(rlimits=(NriRlimit("RLIMIT_NOFILE", 1, 1),)), A(rlimits=(NriRlimit("RLIMIT_NOFILE", 2, 2),)),
         "rlimit 'RLIMIT_NOFILE'"),
        (A(args=("a",)), A(args=("b",)), "args"),
        (A(oom_score_adj=1), A(oom_score_adj=2), "oom_score_adj"),
    ],
)  # fmt: skip
def test_two_plugins_touching_the_same_thing_conflict_naming_both(
    first: NriAdjustment, second: NriAdjustment, what: str
) -> None:
    merger = AdjustmentMerger(CONTAINER)
    merger.add(first, "10-a")
    with pytest.raises(FailedPrecondition, match=f"10-a and 20-b both adjust {what}"):
        merger.add(second, "20-b")


def test_hooks_of_several_plugins_add_up_and_updates_of_one_container_conflict() -> None:
    merger = AdjustmentMerger(CONTAINER)
    merger.add(NriAdjustment(hooks=(("prestart", (NriHook("/bin/a"),)),)), "10-a")
    merger.add(NriAdjustment(hooks=(("prestart", (NriHook("/bin/b"),)),)), "20-b")
    assert [h.path for h in dict(merger.merged().hooks)["prestart"]] == ["/bin/a", "/bin/b"]
    updates = UpdateMerger()
    updates.add((NriUpdate("c", NriResources(cpu_quota=1)),), "10-a")
    with pytest.raises(FailedPrecondition, match="10-a and 20-b both update cpu_quota of container c"):
        updates.add((NriUpdate("c", NriResources(cpu_quota=2)),), "20-b")


def test_an_adjustment_lands_in_the_oci_spec() -> None:
    spec: dict[str, Any] = {
        "process": {"args": ["sleep"], "env": ["KEEP=1", "DROP=1"], "oomScoreAdj": 0},
        "mounts": [{"destination": "/data", "type": "bind", "source": "/old", "options": ["rbind"]}],
        "linux": {"resources": {"memory": {"limit": 1}}},
    }
    adjustment = NriAdjustment(
        annotations=(("nri", "yes"),),
        env=(("NEW", "2"), ("-DROP", "")),
        mounts=(NriMount("/data", "bind", "/new", ("rbind", "ro")),),
        devices=(NriDevice("/dev/nri0", "c", 1, 3, 0o666),),
        rlimits=(NriRlimit("RLIMIT_NOFILE", 10, 5),),
        hooks=(("poststop", (NriHook("/bin/hook", ("hook", "x"), timeout=5),)),),
        resources=NriResources(memory_limit=64, cpu_shares=100, pids_limit=7),
        oom_score_adj=-999,
        args=("sh", "-c", "true"),
    )
    out = apply_adjustment(spec, adjustment, min_oom_score_adj=-500)
    assert out["annotations"] == {"nri": "yes"}
    assert out["process"]["env"] == ["KEEP=1", "NEW=2"]
    assert out["process"]["args"] == ["sh", "-c", "true"]
    assert out["process"]["oomScoreAdj"] == -500, "clamped to what the daemon may set"
    assert out["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}]
    assert out["mounts"] == [
        {"destination": "/data", "type": "bind", "source": "/new", "options": ["rbind", "ro"]}
    ]
    assert out["linux"]["devices"] == [
        {"path": "/dev/nri0", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    ]
    resources = out["linux"]["resources"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in resources["devices"]
    assert resources["memory"] == {"limit": 64} and resources["cpu"] == {"shares": 100}
    assert resources["pids"] == {"limit": 7}
    assert out["hooks"] == {"poststop": [{"path": "/bin/hook", "args": ["hook", "x"], "timeout": 5}]}
    assert spec["process"]["env"] == ["KEEP=1", "DROP=1"], "the input is not changed"
    seen = container_from_spec("c", "p", "app", {}, out)
    assert seen.env == ("KEEP=1", "NEW=2") and seen.resources and seen.resources.memory_limit == 64


@pytest.mark.parametrize(
    "adjustment, field",
    [
        (NriAdjustment(devices=(NriDevice("/dev/x", "z"),)), "device /dev/x has type"),
        (NriAdjustment(mounts=(NriMount("relative"),)), "mount destination"),
        (NriAdjustment(rlimits=(NriRlimit("NOFILE", 1, 1),)), "rlimit type"),
        (NriAdjustment(oom_score_adj=5000), "oom_score_adj"),
    ],
)
def test_a_bad_adjustment_is_refused_naming_the_field(adjustment: NriAdjustment, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        apply_adjustment({}, adjustment, min_oom_score_adj=-1000)


def test_an_update_becomes_cri_resources_and_what_the_cri_cannot_carry_is_refused() -> None:
    base = Resources(cpu_shares=2, memory_limit_in_bytes=10)
    assert cri_resources(base, NriResources(memory_limit=20)) == Resources(
        cpu_shares=2, memory_limit_in_bytes=20
    )
    with pytest.raises(InvalidArgument, match="pids_limit"):
        cri_resources(base, NriResources(pids_limit=3))


def _relay() -> tuple[NriRelay, FakeNriPlugins]:
    fake = FakeNriPlugins()
    relay = NriRelay(fake)
    relay.start(lambda: ([POD], [CONTAINER]), lambda updates: [], lambda cid, reason: None)
    return relay, fake


def test_plugins_hear_events_in_index_order_and_only_those_they_subscribed_to() -> None:
    relay, fake = _relay()
    order: list[str] = []
    late = FakeNriPlugin("20-late", replies={NriEvent.CREATE_CONTAINER: NriReply()})
    early = FakeNriPlugin("10-early", events=frozenset({NriEvent.CREATE_CONTAINER}))
    fake.connect(late)
    fake.connect(early)
    assert early.synced == [([POD], [CONTAINER])]
    relay.create_container(POD, CONTAINER)
    relay.start_container(POD, CONTAINER)
    order = [p.name for p in (early, late) for _ in p.heard if _.event is NriEvent.CREATE_CONTAINER]
    assert order == ["10-early", "20-late"]
    assert [r.event for r in early.heard] == [NriEvent.CREATE_CONTAINER]
    assert [r.event for r in late.heard] == [
        NriEvent.CREATE_CONTAINER,
        NriEvent.VALIDATE_CONTAINER_ADJUSTMENT,  # every event: a validator too
        NriEvent.START_CONTAINER,
    ]


def test_failures_fail_the_pod_or_create_but_are_only_logged_for_notifications() -> None:
    relay, fake = _relay()
    fake.connect(FakeNriPlugin("10-bad", fail_on=frozenset(NriEvent)))
    with pytest.raises(Unavailable):
        relay.run_pod_sandbox(POD)
    with pytest.raises(Unavailable):
        relay.create_container(POD, CONTAINER)
    relay.start_container(POD, CONTAINER)
    relay.stop_container(POD, CONTAINER)
    relay.remove_pod_sandbox(POD)


def test_a_change_waits_for_a_plugin_being_synchronized_and_closed_plugins_are_dropped() -> None:
    relay, fake = _relay()
    order: list[str] = []
    attempting = threading.Event()

    class SlowToSync(FakeNriPlugin):
        def synchronize(self, pods, containers):  # type: ignore[no-untyped-def]
            order.append("sync started")
            assert attempting.wait(30)
            order.append("sync done")
            return []

    def change() -> None:
        attempting.set()
        with relay.lifecycle_change():
            order.append("change")

    plugin = SlowToSync("10-slow")
    worker = threading.Thread(target=change)
    syncing = threading.Thread(target=fake.connect, args=(plugin,))
    syncing.start()
    while not order:
        threading.Event().wait(0.01)
    worker.start()
    worker.join(30)
    syncing.join(30)
    assert order == ["sync started", "sync done", "change"]
    plugin.close()
    assert relay.plugin_names() == []
