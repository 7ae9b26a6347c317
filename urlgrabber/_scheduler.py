"""Which queued request runs next: per-key FIFO lanes, per-key and global limits.

Each request's source names its lane (a host key, or a MirrorGroup) and says
whether it can start given the running count per key.  Lanes are served
round-robin, and a lane whose head cannot start is skipped, so a full or
slow key never holds up the requests of another.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import time
from typing import Any, Iterator

from ._request import Binding, Request

# How deep to look into one lane for a request that can start.  Requests of a
# plain-URL lane share one key, so only the head matters; mirror lanes may
# hold requests that excluded different mirrors.
_SCAN_DEPTH = 16


class Scheduler:
    """Queues requests and hands out the ones allowed to start now."""

    def __init__(self) -> None:
        self.lanes: dict[Any, collections.deque[Request]] = {}
        self.active: collections.Counter = collections.Counter()
        self.running = 0
        self.limit: int | None = None
        self._delayed: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self.queued = 0
        self._blocked = False  # nothing could start since the last change
        self._wake: float | None = None  # when a blocked lane's source may start again

    def push(self, req: Request, front: bool = False) -> None:
        lane = self.lanes.get(req.source.lane)
        if lane is None:
            lane = self.lanes[req.source.lane] = collections.deque()
        if front:
            lane.appendleft(req)
        else:
            lane.append(req)
        self.queued += 1
        self._blocked = False

    def push_later(self, req: Request, when: float) -> None:
        """Queue ``req`` again once the monotonic clock reaches ``when`` (Retry-After)."""
        heapq.heappush(self._delayed, (when, next(self._seq), req))

    def next_wakeup(self) -> float | None:
        """When something queued may start: a delayed retry, or a source's own wake-up
        (a resting mirror); None when only a running transfer's end can change that."""
        wake = self._delayed[0][0] if self._delayed else None
        if self._blocked and self._wake is not None and (wake is None or self._wake < wake):
            return self._wake
        return wake

    def has_work(self) -> bool:
        return bool(self.queued or self._delayed)

    def remove(self, req: Request) -> None:
        """Take a queued request out (batch aborted)."""
        lane = self.lanes.get(req.source.lane)
        while lane is not None and req in lane:  # (a split download may be queued twice)
            lane.remove(req)
            self.queued -= 1
        self._delayed = [d for d in self._delayed if d[2] is not req]
        heapq.heapify(self._delayed)

    def poke(self) -> None:
        """Look again even though nothing changed (a mirror's pause may have ended)."""
        self._blocked = False

    def started(self, key: Any) -> None:
        self.active[key] += 1
        self.running += 1

    def stopped(self, key: Any) -> None:
        self.active[key] -= 1
        self.running -= 1
        self._blocked = False

    def ready(self) -> Iterator[tuple[Request, Binding]]:
        """Yield ``(request, binding)`` for each request that may start now.

        The caller must call ``started(binding.key)`` before taking the next.
        """
        if self._delayed:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                req = heapq.heappop(self._delayed)[2]
                self.push(req, front=True)
        if self._blocked and self._wake is not None and time.monotonic() >= self._wake:
            self._blocked = False  # a resting source's time has come
        if self._blocked or not self.queued:
            return
        lanes = self.lanes
        while self.queued and (self.limit is None or self.running < self.limit):
            progressed = False
            for lane_id in list(lanes):
                lane = lanes[lane_id]
                if not lane:
                    del lanes[lane_id]
                    continue
                found = self._pick(lane)
                if found is None:
                    continue
                progressed = True
                self.queued -= 1
                yield found
                if lane_id in lanes:
                    # round-robin: to the back, also when the global cap now binds,
                    # or the next free slot would go to this lane again
                    if lanes[lane_id]:
                        lanes[lane_id] = lanes.pop(lane_id)
                    else:
                        del lanes[lane_id]
                if self.limit is not None and self.running >= self.limit:
                    return
            if not progressed:
                self._blocked = True
                self._wake = self._source_wakeup()
                return

    def _source_wakeup(self) -> float | None:
        """The earliest time a lane's head request says it may start."""
        times = [t for lane in self.lanes.values() if lane
                 for t in (lane[0].source.next_wakeup(),) if t is not None]
        return min(times) if times else None

    def _pick(self, lane: collections.deque[Request]) -> tuple[Request, Binding] | None:
        active = self.active
        for i, req in enumerate(itertools.islice(lane, _SCAN_DEPTH)):
            binding = req.source.bind(req, active)
            if binding is not None:
                if i == 0:
                    lane.popleft()
                else:
                    del lane[i]
                return req, binding
        return None
