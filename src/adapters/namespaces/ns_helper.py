"""The namespace helper (pycrio-ns.c beside this module, built by `make helpers`): where it is, how it is
run, and what its exit statuses mean.

One small static binary pins a pod's namespaces and starts its infra process: a Python helper spent most
of its run time starting an interpreter, and a forked child of the multi-threaded daemon may only make raw
syscalls and was slower still (docs/bench.md).
"""

from collections.abc import Sequence
from pathlib import Path

from adapters.process import runner
from domain.errors import Internal

# Where `make helpers` puts it: runtime.ns_helper = "" means this one.
BUILT_HELPER = str(Path(__file__).with_name("pycrio-ns"))
EXIT_BAD_SYSCTL = 3


def helper_path(configured: str) -> str:
    return configured or BUILT_HELPER


def run_helper(helper: str, args: Sequence[str], timeout: float, check: bool = True) -> runner.CommandResult:
    """`<helper> <args>` through the runner; a helper that cannot be run is an Internal error naming it."""
    try:
        return runner.run([helper, *args], timeout=timeout, check=check)
    except OSError as err:
        raise Internal(
            f"namespace helper {helper} cannot be run ({err.strerror}): see runtime.ns_helper, `make helpers`"
        ) from None
