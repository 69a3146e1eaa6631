"""Lifecycle events through the real composition root (every host adapter faked), with a client listening:
reporting one change builds the pod's statuses, which may make the containers service learn another
container's exit and report that too. Nothing may wait on itself."""

import threading
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb
from tests.fake_node import fake_node


def test_an_exit_learnt_while_reporting_another_is_reported_too(tmp_path: Path) -> None:
    node = fake_node(tmp_path)
    containers = node.container.container_service()
    pod = node.run_pod("web")
    first, second = node.create(pod, "first"), node.create(pod, "second")
    for container_id in (first, second):
        containers.start(container_id)
    with node.container.event_broadcaster().subscribe() as subscription:
        for container_id in (first, second):  # both exit; the service has not looked yet
            node.runtime.kill(container_id, 9)
        listing = threading.Thread(target=containers.list_containers, daemon=True)
        listing.start()
        listing.join(30)
        assert not listing.is_alive(), "reporting one exit waited on reporting the other"
        stopped = set()
        while (event := subscription.next(0)) is not None:
            if event.container_event_type == pb.CONTAINER_STOPPED_EVENT:
                stopped.add(event.container_id)
    assert stopped == {first, second}
