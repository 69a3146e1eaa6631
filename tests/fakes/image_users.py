"""ImageUsers whose answer the test sets: which containers use which image."""


class FakeImageUsers:
    def __init__(self) -> None:
        self.using: dict[str, list[str]] = {}

    def containers_using(self, image_id: str) -> list[str]:
        return sorted(self.using.get(image_id, []))
