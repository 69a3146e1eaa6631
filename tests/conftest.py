"""Session-wide fixtures every test directory can use: real registries and the images pushed into them."""

from tests.fixtures.faulty_registry import faulty_proxy
from tests.fixtures.gating_registry import gating_proxy, gating_registry
from tests.fixtures.images import pushed_images, test_images
from tests.fixtures.registry import basic_auth_registry, registry, tls_registry, token_auth_registry
from tests.fixtures.stalling_registry import dripping_registry, stalling_registry

__all__ = [
    "basic_auth_registry",
    "dripping_registry",
    "faulty_proxy",
    "gating_proxy",
    "gating_registry",
    "pushed_images",
    "registry",
    "stalling_registry",
    "test_images",
    "tls_registry",
    "token_auth_registry",
]
