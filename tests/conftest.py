"""Session-wide fixtures every test directory can use: real registries and the images pushed into them."""

from tests.fixtures.images import pushed_images
from tests.fixtures.registry import basic_auth_registry, registry, tls_registry, token_auth_registry

__all__ = ["basic_auth_registry", "pushed_images", "registry", "tls_registry", "token_auth_registry"]
