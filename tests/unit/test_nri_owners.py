"""Validators are shown who set what by upstream's Field numbers: every name the mergers claim has one (a
resource field added to NriResources without one would fail every create that a validator sees)."""

from adapters.nri.convert import owners_to_pb
from adapters.nri.generated import nri_pb2 as pb
from domain.nri import SCALAR_RESOURCES, NriOwner


def test_every_scalar_a_plugin_can_own_has_a_field_number() -> None:
    names = [*SCALAR_RESOURCES, "args", "cgroups_path", "oom_score_adj"]
    out = pb.OwningPlugins()
    owners_to_pb(tuple(NriOwner("c1", name, "", "10-a") for name in names), out)
    assert len(out.owners["c1"].simple) == len(names)


def test_every_keyed_thing_a_plugin_can_own_has_a_field_number() -> None:
    names = ["annotation", "mount", "device", "env", "hugepage limit", "unified", "rlimit"]
    out = pb.OwningPlugins()
    owners_to_pb(tuple(NriOwner("c1", name, "k", "10-a") for name in names), out)
    assert len(out.owners["c1"].compound) == len(names)
