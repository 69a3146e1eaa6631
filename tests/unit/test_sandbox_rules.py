"""Pure rules: sysctl namespaces, systemd slice expansion, pod file text."""

import pytest

from domain.cgroup_paths import expand_slice, infra_cgroup
from domain.errors import InvalidArgument
from domain.pod_file_text import hosts, resolv_conf
from domain.quantity import parse_quantity
from domain.sandbox_validation import bandwidth_limits
from domain.sysctls import namespace_of, validate_sysctls
from ports.network import DnsSettings


@pytest.mark.parametrize(
    ("name", "namespace"),
    [
        ("net.ipv4.ip_forward", "net"),
        ("kernel.shm_rmid_forced", "ipc"),
        ("kernel.shmmax", "ipc"),
        ("kernel.msgmax", "ipc"),
        ("kernel.sem", "ipc"),
        ("fs.mqueue.msg_max", "ipc"),
        ("kernel.semx", ""),
        ("kernel.hostname", ""),
        ("vm.overcommit_memory", ""),
        ("fs.file-max", ""),
    ],
)
def test_sysctl_namespaces(name: str, namespace: str) -> None:
    assert namespace_of(name) == namespace


def test_slash_names_are_normalised() -> None:
    assert validate_sysctls({"net/ipv4/ip_forward": "1"}, False, False) == {"net.ipv4.ip_forward": "1"}


def test_a_value_with_a_newline_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="newline"):
        validate_sysctls({"net.ipv4.ip_forward": "1\nvm.x=1"}, False, False)


@pytest.mark.parametrize(
    ("slice_name", "path"),
    [
        ("kubepods.slice", "/kubepods.slice"),
        ("kubepods-burstable.slice", "/kubepods.slice/kubepods-burstable.slice"),
        (
            "kubepods-burstable-pod1234.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice",
        ),
        ("-.slice", "/"),
    ],
)
def test_slice_expansion(slice_name: str, path: str) -> None:
    assert expand_slice(slice_name) == path


@pytest.mark.parametrize("bad", ["kubepods", ".slice", "a--b.slice", "-a.slice", "a/b.slice"])
def test_bad_slices_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        expand_slice(bad)


@pytest.mark.parametrize("parent", ["/" + "a" * 256, "/k" * 2100, "/" + "é" * 200])
def test_cgroup_parents_longer_than_the_kernel_takes_are_refused(parent: str) -> None:
    with pytest.raises(InvalidArgument, match="cgroup_parent: a name longer than 255 bytes"):
        infra_cgroup("cgroupfs", parent, "id")


@pytest.mark.parametrize(
    ("parent", "expanded"),
    [
        ("/test.slice", "/test.slice"),
        ("/kubepods.slice/kubepods-burstable.slice/", "/kubepods.slice/kubepods-burstable.slice"),
        ("kubepods-burstable.slice", "/kubepods.slice/kubepods-burstable.slice"),
    ],
)
def test_systemd_parent_given_as_a_path_is_its_last_slice(parent: str, expanded: str) -> None:
    assert infra_cgroup("systemd", parent, "abc") == (expanded, f"{expanded}/pycrio-abc.scope")


@pytest.mark.parametrize("bad", ["/", "/kubepods", "/a/b.scope", "kubepods"])
def test_systemd_parent_that_is_no_slice_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="not a systemd slice name"):
        infra_cgroup("systemd", bad, "abc")


def test_cgroupfs_parent_is_cleaned_and_dotdot_refused() -> None:
    assert infra_cgroup("cgroupfs", "kubepods//pod1/", "abc") == (
        "/kubepods/pod1",
        "/kubepods/pod1/pycrio-abc",
    )
    with pytest.raises(InvalidArgument):
        infra_cgroup("cgroupfs", "/kubepods/../etc", "abc")


def test_resolv_conf_and_hosts_text() -> None:
    dns = DnsSettings(servers=["10.0.0.10", "10.0.0.11"], searches=["a.svc", "b"], options=["ndots:5"])
    assert resolv_conf(dns) == "search a.svc b\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5\n"
    assert hosts("web", ["10.1.2.3"]).endswith("10.1.2.3\tweb\n")


@pytest.mark.parametrize(
    ("text", "value"),
    [("10M", 10_000_000), ("1Mi", 1 << 20), ("500k", 500_000), ("1.5G", 1_500_000_000), ("123", 123)],
)
def test_quantities(text: str, value: int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "M", "10X", "-1M", "1e3"])
def test_bad_quantities(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_bandwidth_annotations() -> None:
    limits = bandwidth_limits({"kubernetes.io/ingress-bandwidth": "10M"})
    assert limits is not None and (limits.ingress_rate, limits.egress_rate) == (10_000_000, 0)
    assert bandwidth_limits({}) is None
    with pytest.raises(InvalidArgument, match="egress-bandwidth"):
        bandwidth_limits({"kubernetes.io/egress-bandwidth": "lots"})
