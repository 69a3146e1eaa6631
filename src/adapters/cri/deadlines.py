"""Whether the client of an RPC is still waiting for its answer."""

import grpc


def caller_gone(context: grpc.ServicerContext) -> bool:
    """True once the client cancelled or its deadline passed: work it asked for would be kept for nobody."""
    if not context.is_active():
        return True
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0
