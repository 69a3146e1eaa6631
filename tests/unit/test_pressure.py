"""PSI: cgroup v2 pressure files read into samples, and into the CRI's PsiStats (percent averages,
nanosecond totals)."""

from pathlib import Path

from adapters.cgroups.files import read_pressure
from adapters.cgroups.v2 import CgroupV2StatsReader
from adapters.cri.stats import cpu_usage, io_usage, memory_usage
from domain.stats import CpuUsage, IoUsage
from domain.stats import io_usage as domain_io_usage
from domain.stats import memory_usage as domain_memory_usage
from ports.cgroup_stats import Pressure, PressureLine

CPU = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"


def test_a_pressure_file_is_read_with_microseconds_as_nanoseconds(tmp_path: Path) -> None:
    (tmp_path / "cpu.pressure").write_text(CPU)
    assert read_pressure(tmp_path / "cpu.pressure") == Pressure(
        some=PressureLine(1.5, 0.25, 0.0, 1_234_000), full=PressureLine(0.0, 0.0, 0.0, 7000)
    )
    (tmp_path / "old.pressure").write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n")
    old = read_pressure(tmp_path / "old.pressure")
    assert old is not None and old.full is None
    assert read_pressure(tmp_path / "absent.pressure") is None
    (tmp_path / "garbled.pressure").write_text("nothing here\n")
    assert read_pressure(tmp_path / "garbled.pressure") is None


def test_the_v2_reader_fills_all_three_and_the_cri_fields_carry_them(tmp_path: Path) -> None:
    pod = tmp_path / "pod"
    pod.mkdir()
    (pod / "cgroup.procs").write_text("")
    (pod / "cpu.pressure").write_text(CPU)
    (pod / "memory.pressure").write_text(CPU.replace("1234", "99"))
    (pod / "io.pressure").write_text(CPU.replace("1234", "5"))
    sample = CgroupV2StatsReader(tmp_path).read("/pod")
    assert sample.cpu_pressure is not None and sample.cpu_pressure.some.total_ns == 1_234_000
    assert sample.memory_pressure is not None and sample.memory_pressure.some.total_ns == 99_000
    assert sample.io_pressure is not None and sample.io_pressure.some.total_ns == 5000

    cpu = cpu_usage(CpuUsage(10, 1, None, sample.cpu_pressure))
    assert (cpu.psi.Some.Avg10, cpu.psi.Some.Total) == (1.5, 1_234_000)
    memory = memory_usage(domain_memory_usage(sample, 10))
    assert (memory.psi.Some.Total, memory.psi.Full.Total) == (99_000, 7000)
    io = domain_io_usage(sample, 10)
    assert io is not None
    assert io_usage(io).psi.Some.Total == 5000
    assert io_usage(IoUsage(10)).HasField("psi") is False


def test_without_psi_the_fields_stay_unset(tmp_path: Path) -> None:
    (tmp_path / "pod").mkdir()
    sample = CgroupV2StatsReader(tmp_path).read("/pod")
    assert sample.cpu_pressure is None and domain_io_usage(sample, 1) is None
    assert not memory_usage(domain_memory_usage(sample, 1)).HasField("psi")
