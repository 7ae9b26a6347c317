"""Which queued request runs next: per-key FIFO lanes, per-key and global limits.

Each request's source names its lane (a host key, or a MirrorGroup) and says
whether it can start given the load per key.  Lanes are served round-robin,
and a lane whose head cannot start is skipped, so a full or slow key never
holds up the requests of another.

Limits count connections.  A key learned to multiplex (HTTP/2: ``learn``)
carries up to ``streams`` transfers per connection, so its load is its running
transfers / streams, and a per-key limit of 4 lets 4 x streams run (libcurl
packs them onto 4 connections: PIPEWAIT and the multi's stream cap; under
libcurl 7, which would open a connection per extra transfer, one).  Any
other key has one transfer per connection, as before.  The global cap
(``limit``, a batch's max_connections) counts connections the same way: a
transfer may start while fewer than ``limit`` are in use, or when its key has
a free stream on one already counted.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import time
import types

from . import _curl
from ._request import Binding, Request

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator

# How deep to look into one lane for a request that can start.  Requests of a
# plain-URL lane share one key, so only the head matters; mirror lanes may
# hold requests that excluded different mirrors.
_SCAN_DEPTH = 16
_MAX_LEARNED = 4096  # keys whose multiplexing is remembered
_FULL = float("inf")


class Scheduler:
    """Queues requests and hands out the ones allowed to start now."""

    # libcurl 7.x, once a multiplexed connection is full, opens a connection for
    # every further transfer instead of waiting (PIPEWAIT) for one new connection
    # to carry them (7.88; 8.16 and newer wait): there a multiplexing key keeps
    # to one connection, and max_streams transfers
    one_multiplexed_connection = not _curl.WAITS_FOR_NEW_MULTIPLEXED_CONNECTION

    def __init__(self) -> None:
        self.lanes: dict[Any, collections.deque[Request]] = {}
        self.active: collections.Counter = collections.Counter()  # running transfers per key
        self.streams: dict[Any, int] = {}  # transfers per connection of a multiplexing key (absent: 1)
        # per key, the connections' worth of its running transfers (transfers / streams;
        # an int for a key with one stream per connection, as the plain count was):
        # what sources compare with their per-key limit (``bind``, mirror health),
        # through ``load``, a read-only view (a plain dict lookup once per queued file)
        self._load: dict[Any, Any] = {}
        self.load = types.MappingProxyType(self._load)
        self.running = 0                   # transfers
        self.conns = 0                     # connections they take: per key ceil(transfers / streams)
        self.spare = 0                     # free streams on those connections
        self.limit: int | None = None      # cap on self.conns (None: none)
        self._delayed: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self.queued = 0
        self._blocked = False  # nothing could start since the last change
        self._wake: float | None = None  # when a blocked lane's source may start again

    def _lane(self, lane_id: Any) -> collections.deque[Request]:
        lane = self.lanes.get(lane_id)
        if lane is None:
            lane = self.lanes[lane_id] = collections.deque()
        return lane

    def push(self, req: Request, front: bool = False) -> None:
        lane = self._lane(req.source.lane)
        if front:
            lane.appendleft(req)
        else:
            lane.append(req)
        self.queued += 1
        self._blocked = False

    def extend(self, reqs: list[Request]) -> None:
        """``push`` each of ``reqs`` in turn (a batch, queued at once)."""
        lane_id = lane = None
        for req in reqs:
            if req.source.lane != lane_id or lane is None:  # (a batch's requests share a lane or few)
                lane_id = req.source.lane
                lane = self._lane(lane_id)
            lane.append(req)
        self.queued += len(reqs)
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

    def remove_all(self, reqs: list[Request]) -> None:
        """Take many queued requests out in one pass over each lane (a big batch aborted:
        ``remove`` one by one would scan the queue once per request)."""
        gone = set(reqs)
        for lane in self.lanes.values():
            if lane:
                kept = [r for r in lane if r not in gone]
                if len(kept) != len(lane):
                    self.queued -= len(lane) - len(kept)
                    lane.clear()
                    lane.extend(kept)
        if self._delayed:
            self._delayed = [d for d in self._delayed if d[2] not in gone]
            heapq.heapify(self._delayed)

    def poke(self) -> None:
        """Look again even though nothing changed (a mirror's pause may have ended)."""
        self._blocked = False

    def started(self, key: Any) -> None:
        n = self.active[key]
        self.active[key] = n + 1
        self.running += 1
        s = self.streams.get(key)
        if s is None:
            self.conns += 1
            self._load[key] = n + 1  # (the load of a key with one stream per connection)
            return
        if n % s:
            self.spare -= 1        # onto a connection already counted
        else:
            self.conns += 1        # a new connection's worth
            self.spare += s - 1
        self._set_load(key, n + 1, s)

    def stopped(self, key: Any) -> None:
        n = self.active[key] - 1
        self.active[key] = n
        self.running -= 1
        self._blocked = False
        s = self.streams.get(key)
        if s is None:
            self.conns -= 1
            self._load[key] = n
            return
        if n % s:
            self.spare += 1
        else:
            self.conns -= 1        # its last stream left that connection's worth
            self.spare -= s - 1
        self._set_load(key, n, s)

    def _set_load(self, key: Any, n: int, streams: int | None) -> None:
        """``key`` runs ``n`` transfers, ``streams`` per connection (None: one)."""
        if streams is None:
            value: Any = n
        elif n >= streams and self.one_multiplexed_connection:
            value = _FULL  # its one connection is full: no limit lets another start
        else:
            value = n / streams
        self._load[key] = value

    def learn(self, key: Any, streams: int) -> None:
        """``key``'s server runs ``streams`` transfers per connection (1: no multiplexing)."""
        if self.streams.get(key, 1) == streams:
            return
        if streams > 1:
            if len(self.streams) >= _MAX_LEARNED and key not in self.streams:
                self.streams.clear()  # keys that come and go (one-off hosts) must not pile up
            self.streams[key] = streams
        else:
            self.streams.pop(key, None)
        self._count()
        self._blocked = False

    def _count(self) -> None:
        """Recount connections and spare streams (a key's streams changed)."""
        conns = spare = 0
        streams = self.streams
        for key, n in self.active.items():
            s = streams.get(key)
            self._set_load(key, n, s)
            s = s or 1
            c = -(-n // s)
            conns += c
            spare += c * s - n
        self.conns, self.spare = conns, spare

    def can_start(self, key: Any) -> bool:
        """Whether the global cap lets one more transfer of ``key`` start."""
        if self.limit is None or self.conns < self.limit:
            return True
        s = self.streams.get(key)
        return s is not None and self.active.get(key, 0) % s != 0

    def has_room(self) -> bool:
        """Whether any transfer may start under the global cap (a connection or a spare stream)."""
        return self.limit is None or self.conns < self.limit or self.spare > 0

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
        while self.queued and self.has_room():
            if len(lanes) == 1:
                # one lane (a batch from one host, the usual case): no turns to take, so
                # no round over a copy of the lanes; the same picks as the loop below
                lane_id, lane = next(iter(lanes.items()))
                found = self._pick(lane) if lane else None
                if found is None:
                    if not lane:
                        del lanes[lane_id]
                    self._blocked = True
                    self._wake = self._source_wakeup()
                    return
                self.queued -= 1
                yield found
                if lane_id in lanes:  # (the caller may have queued other lanes meanwhile)
                    if not lanes[lane_id]:
                        del lanes[lane_id]
                    elif len(lanes) > 1:
                        lanes[lane_id] = lanes.pop(lane_id)
                continue
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
                if not self.has_room():
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
        load = self.load
        capped = self.limit is not None and self.conns >= self.limit  # only spare streams are left
        req = lane[0]  # (the head usually starts: no scan set up for it)
        binding = req.source.bind(req, load)
        if binding is not None and (not capped or self.can_start(binding.key)):
            lane.popleft()
            return req, binding
        for i, req in enumerate(itertools.islice(lane, 1, _SCAN_DEPTH), 1):
            binding = req.source.bind(req, load)
            if binding is not None:
                if capped and not self.can_start(binding.key):
                    continue
                del lane[i]
                return req, binding
        return None
