"""A full disk becomes ResourceExhausted naming what did not fit; every other OSError passes unchanged."""

import errno

import pytest

from adapters.host.no_space import is_no_space, no_space_left
from domain.errors import ResourceExhausted


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_names_what_did_not_fit(number: int) -> None:
    with (
        pytest.raises(ResourceExhausted, match=r"^no space left for the bundle of c1: "),
        no_space_left("for the bundle of c1"),
    ):
        raise OSError(number, "full")


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(PermissionError), no_space_left("for the bundle of c1"):
        raise PermissionError(errno.EACCES, "denied")
    assert not is_no_space(ValueError("x"))
    assert not is_no_space(OSError(errno.EIO, "io"))
