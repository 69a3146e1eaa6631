"""What the containers service asks of the pods area: the facts of one pod sandbox.

Narrow on purpose: the sandbox service satisfies it with a thin adapter (namespace paths, the files it made
for the pod, its cgroup parent, runtime handler and log directory).
"""

from typing import Protocol

from domain.container_config import SandboxFacts


class SandboxLookup(Protocol):
    def sandbox_facts(self, sandbox_id: str) -> SandboxFacts:
        """The sandbox's facts; NotFound for an unknown id, FailedPrecondition when it is not ready."""
        ...
