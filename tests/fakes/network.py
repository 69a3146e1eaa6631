"""An in-memory Network: readiness is whatever the test says."""

from ports.network import NetworkReadiness


class FakeNetwork:
    def __init__(self, ready: bool = True) -> None:
        self.ready = ready

    def readiness(self) -> NetworkReadiness:
        if self.ready:
            return NetworkReadiness(True)
        return NetworkReadiness(False, "NetworkPluginNotReady", "fake network is not ready")
