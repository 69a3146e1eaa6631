"""Hugepage support as a test sets it: a controller or not, and the page sizes the kernel would list."""


class FakeHugePages:
    def __init__(self, controller: bool = False, sizes: frozenset[str] = frozenset({"2MB", "1GB"})) -> None:
        self.controller = controller
        self.sizes = sizes

    def controller_available(self) -> bool:
        return self.controller

    def page_sizes(self) -> frozenset[str]:
        return self.sizes
