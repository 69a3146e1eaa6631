"""The runtime side of NRI: which plugin hears which event and when, and what their answers become.

A plugin that connects is synchronized with every pod and container before it hears any event, and no
create or other lifecycle change runs meanwhile (a readers-writer gate, as upstream's BlockPluginSync):
a container made while a plugin synchronizes is either in its snapshot or announced to it afterwards.
Events go to the plugins in index order. A failing RunPodSandbox or CreateContainer plugin fails the
request; failures on the other events are logged, as cri-o does. Plugins that closed are dropped.
"""

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import structlog

from domain.errors import FailedPrecondition, PycrioError
from domain.nri import (
    AdjustmentMerger,
    NriAdjustment,
    NriContainer,
    NriEvent,
    NriEviction,
    NriPod,
    NriRequest,
    NriResources,
    NriUpdate,
    UpdateMerger,
    merge_resources,
)
from ports.nri import NriPlugin, NriPlugins

_log = structlog.get_logger("pycrio.nri")

Snapshot = Callable[[], tuple[list[NriPod], list[NriContainer]]]
ApplyUpdates = Callable[[Sequence[NriUpdate]], list[NriUpdate]]  # the updates that failed
Evict = Callable[[str, str], None]


class _Gate:
    """Many lifecycle changes at once, or one plugin synchronizing alone. A thread that holds the gate may
    take it again (stopping a pod stops its containers) without waiting for a synchronization that queued
    meanwhile, which would wait for it in turn."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._syncing = False
        self._held = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            with self._cond:
                self._cond.wait_for(lambda: not self._syncing)
                self._active += 1
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._syncing)
            self._syncing = True
            self._cond.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            with self._cond:
                self._syncing = False
                self._cond.notify_all()


class NriRelay:
    def __init__(self, plugins: NriPlugins) -> None:
        self._port = plugins
        self._plugins: list[NriPlugin] = []
        self._lock = threading.Lock()  # guards the list only
        self._gate = _Gate()
        self._snapshot: Snapshot = lambda: ([], [])
        self._apply_updates: ApplyUpdates = lambda updates: list(updates)
        self._evict: Evict = lambda container_id, reason: None

    def start(self, snapshot: Snapshot, apply_updates: ApplyUpdates, evict: Evict) -> None:
        """Accept plugins; the callables reach the pods and containers services (wired by app/)."""
        self._snapshot, self._apply_updates, self._evict = snapshot, apply_updates, evict
        self._port.start(self._admit, self._unsolicited)

    def stop(self) -> None:
        self._port.stop()
        with self._lock:
            self._plugins.clear()

    def plugin_names(self) -> list[str]:
        return [p.name for p in self._live()]

    @contextmanager
    def lifecycle_change(self) -> Iterator[None]:
        """Held around a change that plugins hear about, so that no plugin synchronizes half-way through."""
        with self._gate.shared():
            yield

    def _admit(self, plugin: NriPlugin) -> None:
        with self._gate.exclusive():
            pods, containers = self._snapshot()
            updates = plugin.synchronize(pods, containers)
            if updates:
                merger = UpdateMerger()
                merger.add(tuple(updates), plugin.name)
                self._report_failed(self._apply_updates(merger.updates()))
            with self._lock:
                self._plugins = sorted([*self._plugins, plugin], key=lambda p: p.name)
        _log.info("NRI plugin synchronized", plugin=plugin.name, pods=len(pods), containers=len(containers))

    def _unsolicited(
        self, plugin: str, updates: Sequence[NriUpdate], evictions: Sequence[NriEviction]
    ) -> list[NriUpdate]:
        merger = UpdateMerger()
        merger.add(tuple(updates), plugin)
        failed = self._apply_updates(merger.updates())
        for eviction in evictions:
            self._evict(eviction.container_id, eviction.reason or f"evicted by NRI plugin {plugin}")
        return failed

    def _live(self) -> list[NriPlugin]:
        with self._lock:
            self._plugins = [p for p in self._plugins if not p.closed]
            return list(self._plugins)

    def _subscribers(self, event: NriEvent) -> list[NriPlugin]:
        return [p for p in self._live() if p.subscribed(event)]

    def _notify(self, request: NriRequest, among: Sequence[NriPlugin] | None = None) -> None:
        """Events whose failure does not fail the CRI request: logged. To the subscribers (of `among`)."""
        for plugin in self._subscribers(request.event):
            if among is not None and all(plugin is not p for p in among):
                continue
            try:
                plugin.call(request)
            except PycrioError as err:
                _log.warning(
                    "NRI plugin failed an event",
                    plugin=plugin.name,
                    nri_event=request.event.name,
                    error=str(err),
                )

    def _report_failed(self, failed: list[NriUpdate]) -> None:
        for update in failed:
            _log.warning("NRI update of a container failed", container=update.container_id)

    # --- pods ---------------------------------------------------------------------------------------------

    def run_pod_sandbox(self, pod: NriPod) -> None:
        """Raises (the plugin's error) to fail the pod; the plugins that heard of it before the failing one
        hear RemovePodSandbox (the pod is undone), so that none keeps a pod that never ran."""
        heard: list[NriPlugin] = []
        for plugin in self._subscribers(NriEvent.RUN_POD_SANDBOX):
            try:
                plugin.call(NriRequest(NriEvent.RUN_POD_SANDBOX, pod))
            except PycrioError:
                self._notify(NriRequest(NriEvent.REMOVE_POD_SANDBOX, pod), heard)
                raise
            heard.append(plugin)

    def update_pod_sandbox(self, pod: NriPod, overhead: NriResources, resources: NriResources) -> None:
        """UpdatePodSandboxResources, before anything changes: raises (the plugin's error) to refuse it, as
        upstream's adaptation does."""
        for plugin in self._subscribers(NriEvent.UPDATE_POD_SANDBOX):
            plugin.call(NriRequest(NriEvent.UPDATE_POD_SANDBOX, pod, resources=resources, overhead=overhead))

    def post_update_pod_sandbox(self, pod: NriPod) -> None:
        self._notify(NriRequest(NriEvent.POST_UPDATE_POD_SANDBOX, pod))

    def stop_pod_sandbox(self, pod: NriPod) -> None:
        self._notify(NriRequest(NriEvent.STOP_POD_SANDBOX, pod))

    def remove_pod_sandbox(self, pod: NriPod) -> None:
        self._notify(NriRequest(NriEvent.REMOVE_POD_SANDBOX, pod))

    # --- containers ---------------------------------------------------------------------------------------

    def create_container(self, pod: NriPod, container: NriContainer) -> NriAdjustment:
        """The merged adjustment of every subscribed plugin; raises on a plugin's error or a conflict. The
        updates plugins ask for other containers are applied once all answered."""
        merger = AdjustmentMerger(container)
        updates = UpdateMerger()
        evictions: list[tuple[NriEviction, str]] = []
        consulted = self._live()
        for plugin in consulted:
            if not plugin.subscribed(NriEvent.CREATE_CONTAINER):
                continue
            reply = plugin.call(NriRequest(NriEvent.CREATE_CONTAINER, pod, merger.container))
            merger.add(reply.adjustment, plugin.name)
            updates.add(reply.updates, plugin.name)
            evictions.extend((e, plugin.name) for e in reply.evictions)
        self._validate(
            [p for p in consulted if p.subscribed(NriEvent.VALIDATE_CONTAINER_ADJUSTMENT)],
            NriRequest(
                NriEvent.VALIDATE_CONTAINER_ADJUSTMENT,
                pod,
                container,
                adjustment=merger.merged(),
                updates=tuple(updates.updates()),
                owners=merger.owners() + updates.owners(),
                plugins=tuple(p.name for p in consulted),
            ),
        )
        if updates.updates():
            self._report_failed(self._apply_updates(updates.updates()))
        for eviction, plugin_name in evictions:
            self._evict(eviction.container_id, eviction.reason or f"evicted by NRI plugin {plugin_name}")
        return merger.merged()

    @staticmethod
    def _validate(validators: list[NriPlugin], request: NriRequest) -> None:
        """Every validator sees the outcome before anything is applied; one rejecting it, failing or timing
        out fails the create (upstream asks them all at once; here one after the other, in index order)."""
        for validator in validators:
            reply = validator.call(request)
            if reply.rejected:
                name = request.container.name if request.container else ""
                raise FailedPrecondition(
                    f"NRI validator {validator.name} rejected the adjustment of container {name!r}: "
                    f"{reply.reason or 'no reason given'}"
                )

    def post_create_container(self, pod: NriPod, container: NriContainer) -> None:
        self._notify(NriRequest(NriEvent.POST_CREATE_CONTAINER, pod, container))

    def start_container(self, pod: NriPod, container: NriContainer) -> None:
        self._notify(NriRequest(NriEvent.START_CONTAINER, pod, container))

    def post_start_container(self, pod: NriPod, container: NriContainer) -> None:
        self._notify(NriRequest(NriEvent.POST_START_CONTAINER, pod, container))

    def update_container(self, pod: NriPod, container: NriContainer, resources: NriResources) -> NriResources:
        """The resources to apply: the request's, with what plugins change for this container; updates of
        other containers are applied too."""
        merger = UpdateMerger()
        merger.add((NriUpdate(container.id, resources),), "(request)")
        mine = resources
        for plugin in self._subscribers(NriEvent.UPDATE_CONTAINER):
            reply = plugin.call(NriRequest(NriEvent.UPDATE_CONTAINER, pod, container, mine))
            ours = [u for u in reply.updates if u.container_id == container.id]
            for update in ours:
                mine = merge_resources(mine, update.resources)
            merger.add(tuple(u for u in reply.updates if u.container_id != container.id), plugin.name)
        others = [u for u in merger.updates() if u.container_id != container.id]
        if others:
            self._report_failed(self._apply_updates(others))
        return mine

    def post_update_container(self, pod: NriPod, container: NriContainer) -> None:
        self._notify(NriRequest(NriEvent.POST_UPDATE_CONTAINER, pod, container))

    def stop_container(self, pod: NriPod, container: NriContainer) -> None:
        updates = UpdateMerger()
        for plugin in self._subscribers(NriEvent.STOP_CONTAINER):
            try:
                reply = plugin.call(NriRequest(NriEvent.STOP_CONTAINER, pod, container))
                updates.add(tuple(u for u in reply.updates if u.container_id != container.id), plugin.name)
            except PycrioError as err:
                _log.warning("NRI plugin failed StopContainer", plugin=plugin.name, error=str(err))
        if updates.updates():
            self._report_failed(self._apply_updates(updates.updates()))

    def remove_container(self, pod: NriPod, container: NriContainer) -> None:
        self._notify(NriRequest(NriEvent.REMOVE_CONTAINER, pod, container))


@contextmanager
def lifecycle_change(relay: NriRelay | None) -> Iterator[None]:
    """The services' one way to hold the relay's gate around a change (a no-op with NRI off)."""
    if relay is None:
        yield
        return
    with relay.lifecycle_change():
        yield
