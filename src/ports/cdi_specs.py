"""Where CDI spec files come from (the spec directories, `/etc/cdi` and `/var/run/cdi` by default)."""

from typing import Protocol

from domain.cdi import CdiSpecSet


class CdiSpecs(Protocol):
    def load(self) -> CdiSpecSet:
        """Every spec file of the directories as it is now: valid specs (priority = the directory's index,
        a later directory winning), and the files that could not be read or are not valid specs, with why.
        Only `*.json` and `*.yaml` files count; a missing directory holds nothing."""
        ...
