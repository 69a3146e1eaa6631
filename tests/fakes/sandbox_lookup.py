"""SandboxLookup over a dict of sandbox facts."""

from domain.container_config import SandboxFacts
from domain.errors import FailedPrecondition, NotFound


class FakeSandboxLookup:
    def __init__(self) -> None:
        self.sandboxes: dict[str, SandboxFacts] = {}
        self.stopped: set[str] = set()

    def add(self, facts: SandboxFacts) -> SandboxFacts:
        self.sandboxes[facts.id] = facts
        return facts

    def sandbox_facts(self, sandbox_id: str) -> SandboxFacts:
        facts = self.sandboxes.get(sandbox_id)
        if facts is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        if sandbox_id in self.stopped:
            raise FailedPrecondition(f"pod sandbox {sandbox_id} is not ready")
        return facts
