"""CDI: spec documents checked like the reference library, names resolved, edits merged into the spec."""

import copy
from typing import Any

import pytest

from domain import cdi
from domain.container_config import ContainerConfig, Mount
from domain.errors import InvalidArgument, NotFound
from domain.oci_spec import HostDevice, build_spec
from tests.unit.containers.test_oci_spec import inputs

NULL_LIKE = HostDevice("/dev/pctest-null", "c", 1, 3, 0o666)


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cdiVersion": "0.6.0",
        "kind": "example.com/gpu",
        "devices": [
            {
                "name": "gpu0",
                "containerEdits": {
                    "deviceNodes": [
                        {"path": "/dev/gpu0", "hostPath": "/dev/pctest-null", "permissions": "rw"}
                    ],
                    "env": ["GPU=0"],
                },
            }
        ],
        "containerEdits": {
            "env": ["VENDOR=example"],
            "mounts": [{"hostPath": "/opt/lib", "containerPath": "/usr/lib/gpu", "options": ["ro", "bind"]}],
            "hooks": [
                {"hookName": "createContainer", "path": "/usr/bin/gpu-hook", "args": ["gpu-hook", "x"]}
            ],
        },
    }
    base.update(changes)
    return base


def spec_set(*documents: tuple[dict[str, Any], int]) -> cdi.CdiSpecSet:
    return cdi.CdiSpecSet(
        tuple(cdi.parse_spec(d, f"/etc/cdi/{i}.json", p) for i, (d, p) in enumerate(documents))
    )


@pytest.mark.parametrize(
    "name",
    ["example.com/gpu=gpu0", "a/b=c", "vendor.io/class.sub=0:1", "nvidia.com/gpu=all", "x.y/z-w=a_b.c"],
)
def test_qualified_names_are_accepted(name: str) -> None:
    assert cdi.parse_qualified_name(name)[2] == name.split("=")[1]


@pytest.mark.parametrize(
    "name", ["gpu0", "example.com/gpu", "example.com=gpu0", "/dev/null", "1vendor/gpu=x", "v/c=-x", "v/c=x-"]
)
def test_malformed_names_are_invalid_argument_naming_the_device(name: str) -> None:
    with pytest.raises(InvalidArgument, match="CDI device"):
        cdi.parse_qualified_name(name)


def test_requested_devices_take_the_field_then_annotations_without_repeats() -> None:
    annotations = {"cdi.k8s.io/plugin_dev": "example.com/gpu=gpu1,example.com/gpu=gpu0", "other": "x=y"}
    assert cdi.requested_devices(["example.com/gpu=gpu0"], annotations) == (
        "example.com/gpu=gpu0",
        "example.com/gpu=gpu1",
    )
    with pytest.raises(InvalidArgument, match="annotations"):
        cdi.requested_devices([], {"cdi.k8s.io/x": "not-qualified"})
    with pytest.raises(InvalidArgument, match="at most"):
        cdi.requested_devices([f"v/c=d{i}" for i in range(cdi.MAX_REQUESTED_DEVICES + 1)], {})


def test_every_known_version_up_to_the_current_one_reads() -> None:
    for version in cdi.KNOWN_VERSIONS[: cdi.KNOWN_VERSIONS.index("0.6.0") + 1]:
        assert cdi.parse_spec(document(cdiVersion=version), "/x.json", 0).kind == "example.com/gpu"
    assert cdi.CURRENT_VERSION == cdi.KNOWN_VERSIONS[0] == "1.1.0"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cdiVersion": "2.0.0"}, "not a known CDI version"),
        ({"cdiVersion": "0.4.0"}, "must be at least 0.5.0"),  # hostPath came in 0.5.0
        ({"kind": "gpu"}, "vendor.com/class"),
        ({"devices": []}, "at least one device"),
        ({"surprise": 1}, "unknown field 'surprise'"),
        ({"devices": [{"name": "d", "containerEdits": {}}]}, "no container edits"),
        ({"devices": [{"name": "d", "containerEdits": {"env": ["NOEQUALS"]}}]}, "NAME=value"),
        ({"devices": [{"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "type": "z"}]}}]},
         "is not b, c, u or p"),
        ({"devices": [{"name": "d", "containerEdits": {"hooks": [{"hookName": "later", "path": "/x"}]}}]},
         "is not one of"),
        ({"devices": [{"name": "d", "containerEdits": {"env": ["A=1"]}}] * 2}, "defined twice"),
    ],
)  # fmt: skip
def test_broken_documents_say_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        cdi.parse_spec(document(**changes), "/etc/cdi/x.json", 0)


def test_version_1_1_fields_need_version_1_1() -> None:
    net = {
        "devices": [
            {"name": "n", "containerEdits": {"netDevices": [{"hostInterfaceName": "e", "name": "n"}]}}
        ]
    }
    with pytest.raises(InvalidArgument, match=r"at least 1\.1\.0"):
        cdi.parse_spec(document(cdiVersion="1.0.0", **net), "/x.json", 0)
    assert cdi.parse_spec(document(cdiVersion="1.1.0", **net), "/x.json", 0).devices["n"].net_devices


def test_a_later_directory_wins_and_one_directory_twice_is_a_conflict() -> None:
    early = document(devices=[{"name": "gpu0", "containerEdits": {"env": ["FROM=early"]}}])
    late = document(devices=[{"name": "gpu0", "containerEdits": {"env": ["FROM=late"]}}])
    resolved = cdi.resolve(spec_set((early, 0), (late, 1)), ["example.com/gpu=gpu0"])
    assert resolved.parts[-1][1].env == ("FROM=late",)
    resolved = cdi.resolve(spec_set((late, 1), (early, 0)), ["example.com/gpu=gpu0"])
    assert resolved.parts[-1][1].env == ("FROM=late",)
    with pytest.raises(InvalidArgument, match="several spec files"):
        cdi.resolve(spec_set((early, 0), (late, 0)), ["example.com/gpu=gpu0"])


def test_an_unknown_device_is_not_found_naming_it_and_the_broken_files() -> None:
    specs = cdi.CdiSpecSet(
        spec_set((document(), 0)).specs, (cdi.SpecError("/etc/cdi/bad.yaml", "not valid"),)
    )
    with pytest.raises(NotFound, match=r"example.com/gpu=gpu9.*/etc/cdi/bad.yaml: not valid"):
        cdi.resolve(specs, ["example.com/gpu=gpu9"])


def test_the_common_edits_come_once_before_the_devices_of_their_spec() -> None:
    two = document(devices=[{"name": "gpu0", "containerEdits": {"env": ["A=0"]}},
                            {"name": "gpu1", "containerEdits": {"env": ["A=1"]}}])  # fmt: skip
    resolved = cdi.resolve(spec_set((two, 0)), ["example.com/gpu=gpu0", "example.com/gpu=gpu1"])
    assert [source for source, _ in resolved.parts] == [
        "CDI spec /etc/cdi/0.json",
        "CDI device example.com/gpu=gpu0",
        "CDI device example.com/gpu=gpu1",
    ]


def cdi_spec(
    resolved: cdi.ResolvedEdits, config: ContainerConfig | None = None, **changes: Any
) -> dict[str, Any]:
    changes.setdefault("cdi_host_devices", {"/dev/pctest-null": NULL_LIKE})
    return build_spec(inputs(config, cdi_edits=resolved, **changes))


def test_edits_land_in_the_spec() -> None:
    resolved = cdi.resolve(spec_set((document(), 0)), ["example.com/gpu=gpu0"])
    assert resolved.device_sources() == ("/dev/pctest-null",)
    spec = cdi_spec(resolved)
    assert "VENDOR=example" in spec["process"]["env"] and "GPU=0" in spec["process"]["env"]
    assert {"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666} in spec["linux"][
        "devices"
    ]
    assert spec["linux"]["resources"]["devices"][-1] == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"
    }  # fmt: skip
    assert {"destination": "/usr/lib/gpu", "source": "/opt/lib", "options": ["ro", "bind"]} in spec["mounts"]
    assert spec["hooks"]["createContainer"] == [{"path": "/usr/bin/gpu-hook", "args": ["gpu-hook", "x"]}]
    depths = [len([p for p in m["destination"].split("/") if p]) for m in spec["mounts"]]
    assert depths == sorted(depths), "parents are mounted before what is mounted inside them"


def test_env_of_the_same_key_and_a_mount_at_the_same_path_are_replaced() -> None:
    config = ContainerConfig(name="c", command=("/bin/true",), envs=(("VENDOR", "mine"),),
                             mounts=(Mount("/usr/lib/gpu", "/data"),))  # fmt: skip
    spec = cdi_spec(cdi.resolve(spec_set((document(), 0)), ["example.com/gpu=gpu0"]), config,
                    mount_sources={"/data": "/data"})  # fmt: skip
    assert [e for e in spec["process"]["env"] if e.startswith("VENDOR=")] == ["VENDOR=example"]
    assert [m["source"] for m in spec["mounts"] if m["destination"] == "/usr/lib/gpu"] == ["/opt/lib"]


def test_device_owner_defaults_to_the_process_user_and_gids_are_added() -> None:
    gids = document(cdiVersion="0.7.0", devices=[{"name": "gpu0", "containerEdits": {
        "deviceNodes": [{"path": "/dev/gpu0", "type": "c", "major": 195, "minor": 0, "permissions": "none"}],
        "additionalGids": [0, 44, 44]}}])  # fmt: skip
    config = ContainerConfig(name="c", command=("/bin/true",))
    config = config.__class__(**{**config.__dict__, "security": config.security.__class__(run_as_user=33)})
    spec = cdi_spec(cdi.resolve(spec_set((gids, 0)), ["example.com/gpu=gpu0"]), config, cdi_host_devices={})
    device = next(d for d in spec["linux"]["devices"] if d["path"] == "/dev/gpu0")
    assert (device["major"], device["uid"], device["gid"]) == (195, 33, 33)
    assert spec["linux"]["resources"]["devices"][-1]["access"] == ""
    assert spec["process"]["user"]["additionalGids"].count(44) == 1
    assert 0 not in spec["process"]["user"]["additionalGids"][1:]


def test_a_device_node_missing_on_the_host_is_invalid_argument_naming_the_device() -> None:
    resolved = cdi.resolve(spec_set((document(), 0)), ["example.com/gpu=gpu0"])
    with pytest.raises(InvalidArgument, match=r"example.com/gpu=gpu0.*/dev/pctest-null.*does not exist"):
        cdi_spec(resolved, cdi_host_devices={})


def test_net_devices_are_refused_for_a_runtime_spec_1_0_runtime() -> None:
    net = document(cdiVersion="1.1.0", devices=[{"name": "n", "containerEdits": {
        "netDevices": [{"hostInterfaceName": "eth9", "name": "net0"}]}}])  # fmt: skip
    with pytest.raises(InvalidArgument, match=r"example\.com/gpu=n: netDevices"):
        cdi_spec(cdi.resolve(spec_set((net, 0)), ["example.com/gpu=n"]))


def test_no_request_leaves_the_spec_as_it_was() -> None:
    plain = build_spec(inputs())
    assert build_spec(inputs(cdi_edits=cdi.ResolvedEdits())) == plain
    assert "hooks" not in copy.deepcopy(plain)
