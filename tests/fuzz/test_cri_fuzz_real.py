"""The fuzz suite, bounded, against the real daemon: runc, conmon, CNI, overlay storage, cgroups.

Fewer examples and a wider time budget than the fakes' run. Requests are as random as there, except what
would let a random request damage this shared machine (tests/fuzz/real_daemon.py). Afterwards nothing may
be left: no pod, container, runc container, mount or cgroup, and nothing created outside the daemon's dirs
and the scratch directory.

More examples: PYCRIO_FUZZ_REAL_EXAMPLES=200.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.fuzz.messages import Known
from tests.fuzz.real_daemon import confined, confined_daemon
from tests.fuzz.sequences import fuzz_settings, run_sequence

BUDGET = 60.0


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CriClient, Path, str]]:
    work = tmp_path_factory.mktemp("fuzz-real")
    with confined_daemon(work, "fuzz", bridge="pcfuzz0", subnet="10.94.0.0/24") as (client, parent):
        yield client, work, parent


@fuzz_settings("PYCRIO_FUZZ_REAL_EXAMPLES", 40)
@given(data=st.data())
def test_random_calls_against_the_real_daemon(real: tuple[CriClient, Path, str], data: st.DataObject) -> None:
    client, work, parent = real
    scratch = work / "scratch"
    known = Known(log_directory=str(scratch / "logs"))
    run_sequence(client, data, known, calls=6, budget=BUDGET, allow_huge=False,
                 confine=lambda request: confined(request, scratch, parent))  # fmt: skip
    assert not client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert not client.runtime.ListContainers(pb.ListContainersRequest()).containers
