"""SandboxLookup over a dict of sandbox facts."""

from domain.container_config import SandboxFacts
from domain.errors import NotFound


class FakeSandboxLookup:
    def __init__(self) -> None:
        self.sandboxes: dict[str, SandboxFacts] = {}

    def add(self, facts: SandboxFacts) -> SandboxFacts:
        self.sandboxes[facts.id] = facts
        return facts

    def sandbox_facts(self, sandbox_id: str) -> SandboxFacts:
        facts = self.sandboxes.get(sandbox_id)
        if facts is None:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return facts
