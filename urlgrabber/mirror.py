"""MirrorGroup: one file, many mirrors; failover and load spreading in both modes.

A blocking call tries mirrors in the classic order (``MirrorGroup``: the
group's current mirror first; ``MGRandomStart``: a random start;
``MGRandomOrder``: a random order).  In a batch a request binds to a mirror
only when it starts, choosing among mirrors with a free slot by estimated
speed / (1 + load).  Failures apply the classic actions (``remove``,
``increment``, ``remove_master``, ``increment_master``, ``fail``) and feed
each mirror's health: a mirror that refuses or times out loses connection
slots, honours ``Retry-After``, and one that never succeeds is skipped.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from . import _curl
from ._request import Binding, CallbackObject, Request, run_callback
from ._timedhosts import TimedHosts
from .errors import URLGrabError, redact
from .grabber import (
    URLGrabber,
    dispatch,
    local_path,
    make_request,
    open_stream,
    per_key_limit,
    run_blocking,
)

_GROUP_OPTIONS = ("failure_callback", "default_action")
_DEAD_AFTER = 3          # failures with no success before a mirror is skipped for the batch
_DEAD_STREAK = 8         # consecutive failures that skip even a mirror that once worked
_COOLDOWN = 0.25         # first rest after a 503/429/timeout without Retry-After; doubles per failure in a row
_MAX_COOLDOWN = 60.0
_HEDGE_MIN_ETA = 1.0     # a transfer expected to end sooner than this is not worth racing
_HEDGE_SPEEDUP = 3.0     # race only on a mirror estimated this many times faster


class _Mirror:
    """One mirror of a group: its base URL, options, limit, and health in this process."""

    def __init__(self, entry: Any, group: MirrorGroup) -> None:
        if isinstance(entry, dict):
            base = entry["mirror"]
            grabber = entry.get("grabber") or group.grabber
            kwargs = dict(entry.get("kwargs") or {})
            self.private = bool(entry.get("private"))
        else:
            base, grabber, kwargs, self.private = entry, group.grabber, {}, False
        if isinstance(base, bytes):
            base = base.decode("utf-8")
        self.entry = entry
        self.base = base
        self.key = base
        self.opts = grabber.opts.derive(**kwargs)
        self.limit = int(kwargs["max_connections"]) if kwargs.get("max_connections") else None
        self.cur_limit: int | None = None
        self.successes = 0
        self.failures = 0
        self.streak = 0
        self.resting_until = 0.0
        self.speed = 0.0            # bytes/s seen in this process (0: unknown)

    def join(self, rel: str) -> str:
        if not self.base.endswith("/") and not rel.startswith("/"):
            return self.base + "/" + rel
        if self.base.endswith("/") and rel.startswith("/"):
            return self.base + rel[1:]
        return self.base + rel

    @property
    def dead(self) -> bool:
        return (self.successes == 0 and self.failures >= _DEAD_AFTER) or self.streak >= _DEAD_STREAK

    def limit_for(self, default: int) -> int:
        limit = self.limit or default
        if self.cur_limit is not None:
            limit = min(limit, self.cur_limit)
        return max(1, limit)

    def succeeded(self, nbytes: int, seconds: float) -> None:
        self.successes += 1
        self.streak = 0
        if seconds > 0 and nbytes > 0:
            rate = nbytes / seconds
            self.speed = rate if not self.speed else 0.7 * self.speed + 0.3 * rate
        if self.cur_limit is not None:
            self.cur_limit += 1  # earn slots back
            if self.limit is not None and self.cur_limit >= self.limit:
                self.cur_limit = None

    def failed(self, overloaded: bool, busy: bool, running: int, rest: float | None) -> None:
        """A failed attempt.  ``overloaded``: fewer connections; ``busy`` (503/429/timeout): rest too."""
        self.failures += 1
        self.streak += 1
        if overloaded:
            self.cur_limit = max(1, min(self.cur_limit or running, running) - 1) if running > 1 else 1
        if busy:
            pause = min(_COOLDOWN * 2 ** (self.streak - 1) if rest is None else rest, _MAX_COOLDOWN)
            self.resting_until = max(self.resting_until, time.monotonic() + pause)


class _GrabRequest:
    """Classic per-call mirror state: the mirrors left for this download and the next index."""

    def __init__(self, mirrors: list[_Mirror], start: int) -> None:
        self.mirrors = list(mirrors)
        self._next = start % len(self.mirrors) if self.mirrors else 0


class _MirrorSource:
    """A request's source when it comes from a MirrorGroup: picks, and leaves, mirrors."""

    def __init__(self, group: MirrorGroup, rel: str, kwargs: dict, gr: _GrabRequest,
                 callback: Any, default_action: dict | None) -> None:
        self.group = group
        self.lane = ("mirror-group", id(group))
        self.rel = rel
        self.kwargs = kwargs
        self.gr = gr
        self.callback = callback
        self.default_action = default_action or {}
        self._opts: dict[int, Any] = {}
        self.batch = False  # set from the request's options by MirrorGroup._request

    def _binding(self, mirror: _Mirror, error: URLGrabError | None = None) -> Binding:
        opts = self._opts.get(id(mirror))
        if opts is None:
            opts = self._opts[id(mirror)] = mirror.opts.derive(**self.kwargs) if self.kwargs else mirror.opts
        return Binding(mirror.join(self.rel), mirror.key, opts, mirror, error)

    def bind(self, req: Request, active: dict) -> Binding | None:
        gr = self.gr
        if not gr.mirrors:
            return None
        if not self.batch:
            return self._binding(gr.mirrors[gr._next])
        return self._choose(req, active)

    def _choose(self, req: Request, active: dict) -> Binding | None:
        now = time.monotonic()
        mirrors = self.gr.mirrors
        alive = [m for m in mirrors if not m.dead]
        if not alive:
            # every mirror left for this file kept failing in this batch: say so
            # without another connection (a blackholed mirror would cost `timeout`)
            m = mirrors[0]
            url = m.join(self.rel)
            return self._binding(m, URLGrabError(
                14, f"Mirror skipped, it failed {m.failures} times in this batch: {redact(url)}",
                url=url))
        awake = [m for m in alive if m.resting_until <= now]
        if not awake:
            return None
        default_limit = per_key_limit(req.opts)
        best = None
        best_score = None
        speeds = self.group.speeds(awake)
        start, count = self.gr._next, len(mirrors)
        for m, speed in zip(awake, speeds):
            load = active.get(m.key, 0)
            if load >= m.limit_for(default_limit):
                continue
            # ties go to the classic order: from the group's current mirror on
            order = (mirrors.index(m) - start) % count
            score = (m.private, -m.streak, speed / (1 + load), -order)
            if best_score is None or score > best_score:
                best, best_score = m, score
        return None if best is None else self._binding(best)

    def hedge_binding(self, req: Request, transfer: Any, rate: float, remaining: int,
                      active: dict) -> Binding | None:
        """Slow tail: an idle, healthy mirror expected to deliver the rest much sooner."""
        if not self.batch:
            return None
        eta = remaining / rate if rate > 0 else float("inf")
        if eta < _HEDGE_MIN_ETA:
            return None
        now = time.monotonic()
        current = transfer.binding.mirror
        default_limit = per_key_limit(req.opts)
        best, best_speed = None, 0.0
        for m in self.gr.mirrors:
            if m is current or m.dead or m.resting_until > now:
                continue
            if active.get(m.key, 0) >= m.limit_for(default_limit):
                continue
            speed = self.group.speed_estimate(m)
            if speed > best_speed:
                best, best_speed = m, speed
        if best is None or best_speed < _HEDGE_SPEEDUP * max(rate, 1.0):
            return None
        return self._binding(best)

    def attempt_ended(self, req: Request, binding: Binding, err: URLGrabError | None,
                      transfer: Any) -> None:
        mirror = binding.mirror
        if mirror is None:
            return
        group = self.group
        seconds = time.monotonic() - transfer.started if transfer is not None else 0.0
        nbytes = transfer.received if transfer is not None else 0
        if err is None:
            mirror.succeeded(nbytes, seconds)
            group.timed_update(mirror, nbytes, seconds, False)
            return
        code = getattr(err, "code", None)
        errno = getattr(err, "errno", None)
        status_error = transfer is not None and transfer.status >= 400
        overloaded = code in (429, 503) or (not status_error and code in _curl.UNREACHABLE)
        if (errno is not None and errno < 0) or (status_error and code is not None and code < 500):
            return  # a bad file or a missing one: not the mirror's health
        busy = code in (429, 503) or (not status_error and code == 28)
        running = group.running(mirror)
        rest = transfer.retry_after() if transfer is not None else None
        mirror.failed(overloaded, busy, running + 1, rest)
        group.timed_update(mirror, nbytes, seconds, True)

    def failover(self, req: Request, err: URLGrabError) -> URLGrabError | None:
        """Apply the failure actions; None means another mirror will be tried."""
        gr = self.gr
        binding = req.binding
        mirror = binding.mirror if binding is not None else None
        action = dict(self.group.default_action or {})
        action.update(self.default_action)
        if self.callback is not None:
            obj = CallbackObject(req.opts, exception=err, mirror=mirror.base if mirror else None,
                                 relative_url=self.rel, url=redact(binding.url) if binding else None,
                                 tries=req.tries, filename=req.filename)
            try:
                returned = run_callback(self.callback, obj)
            except URLGrabError as e:
                e.errors = list(req.errors)
                return e
            action.update(returned or {})
        if mirror is not None:
            self.group._apply_master_action(mirror, action)
            if mirror in gr.mirrors:
                index = gr.mirrors.index(mirror)
                if action.get("remove", 1):
                    del gr.mirrors[index]
                    if gr._next > index:
                        gr._next -= 1
                elif action.get("increment", 1):
                    gr._next = index + 1
                if gr.mirrors:
                    gr._next %= len(gr.mirrors)
        if action.get("fail", 0):
            err.errors = list(req.errors)
            return err
        cap = max(3, 3 * len(self.group.mirrors)) * max(1, req.opts.retry or 1)
        if not gr.mirrors or req.attempts >= cap:
            return URLGrabError(256, f"No more mirrors to try: {self.rel}", url=self.rel,
                                errors=list(req.errors), exception=err)
        return None


class MirrorGroup:
    """Grab a file from a list of mirrors, failing over between them.

    ``mirrors``: base URL strings, or dicts ``{'mirror': base, 'grabber': g,
    'kwargs': {...}, 'private': bool}`` (``kwargs['max_connections']`` is that
    mirror's connection limit in a batch).
    """

    def __init__(self, grabber: URLGrabber, mirrors: list, failure_callback: Any = None,
                 default_action: dict | None = None, **kwargs: Any) -> None:
        self.grabber = grabber
        self.failure_callback = failure_callback or kwargs.get("failure_callback")
        self.default_action = default_action or kwargs.get("default_action") or {}
        self._lock = threading.Lock()
        self._all = [_Mirror(m, self) for m in mirrors]
        self.mirrors = list(self._all)
        self._next = 0
        self._timed: TimedHosts | None = None
        self._active = None
        self._in_batch = 0

    # -- classic public methods ----------------------------------------------

    def urlgrab(self, url: str, filename: str | None = None, **kwargs: Any) -> str:
        """Download ``url`` (relative to the mirrors) to ``filename``; return the filename."""
        req = self._request("grab", url, kwargs, filename=filename)
        if isinstance(req, str):
            return req
        return dispatch(req)

    def urlread(self, url: str, limit: int | None = None, **kwargs: Any) -> bytes:
        """Return the body of ``url`` (relative to the mirrors)."""
        kwargs.pop("async_", None)
        kwargs.pop("async", None)
        return run_blocking(self._request("read", url, kwargs, limit=limit))

    def urlopen(self, url: str, **kwargs: Any) -> Any:
        """Open ``url`` (relative to the mirrors) as a stream."""
        kwargs.pop("async_", None)
        kwargs.pop("async", None)
        return open_stream(self._request("open", url, kwargs))

    def increment_mirror(self, gr: Any = None, action: dict | None = None) -> None:
        """Move the group's starting mirror on (classic, for callers of urlopen)."""
        with self._lock:
            if self.mirrors:
                self._next = (self._next + 1) % len(self.mirrors)

    # -- internals -------------------------------------------------------------

    def _start_index(self) -> int:
        return self._next

    def _order(self, mirrors: list[_Mirror]) -> list[_Mirror]:
        return mirrors

    def _request(self, kind: str, rel: str, kwargs: dict, filename: str | None = None,
                 limit: int | None = None) -> Any:
        if "async" in kwargs:
            kwargs["async_"] = kwargs.pop("async")
        callback = kwargs.pop("failure_callback", None) or self.failure_callback
        default_action = kwargs.pop("default_action", None)
        if isinstance(rel, bytes):
            rel = rel.decode("utf-8")
        if not self.mirrors:
            raise URLGrabError(256, f"No more mirrors to try: {rel}", url=rel, errors=[])
        opts = self.grabber.opts.derive(**kwargs)
        if filename is None and kind == "grab":
            filename = rel.rstrip("/").rsplit("/", 1)[-1] or "index.html"
        gr = _GrabRequest(self._order(list(self.mirrors)), self._start_index())
        source = _MirrorSource(self, rel, kwargs, gr, callback, default_action)
        source.batch = bool(opts.async_)
        if kind == "grab" and not opts.async_:
            local = self._local(gr, rel, opts)
            if local is not None:
                return local
        return make_request(opts, kind, rel, filename=filename, limit=limit, source=source)

    def _local(self, gr: _GrabRequest, rel: str, opts: Any) -> str | None:
        """A file:// mirror with copy_local off: hand back its path, as classic did."""
        if not gr.mirrors or opts.copy_local:
            return None
        mirror = gr.mirrors[gr._next]
        if not mirror.base.startswith("file:"):
            return None
        url, parts = (opts.urlparser or self.grabber.opts.urlparser).parse(mirror.join(rel), opts)
        try:
            return local_path(url, parts)
        except URLGrabError:
            return None

    def _apply_master_action(self, mirror: _Mirror, action: dict) -> None:
        with self._lock:
            if mirror not in self.mirrors:
                return
            index = self.mirrors.index(mirror)
            if action.get("remove_master", 0):
                del self.mirrors[index]
                if self._next > index:
                    self._next -= 1
            elif self._next == index and action.get("increment_master", 1):
                self._next += 1
            if self._next >= len(self.mirrors):
                self._next = 0

    def running(self, mirror: _Mirror) -> int:
        from ._engine import engine
        return engine().scheduler.active.get(mirror.key, 0)

    def _known_speed(self, mirror: _Mirror) -> float | None:
        if mirror.speed:
            return mirror.speed
        timed = self._timed
        if timed is not None and timed.known(mirror.key):
            return timed.speed(mirror.key)
        return None

    def speeds(self, mirrors: list[_Mirror]) -> list[float]:
        """Estimated bytes/s per mirror.  One with no history is rated like the
        best known one, so it gets tried, and the classic order breaks the tie."""
        known = [self._known_speed(m) for m in mirrors]
        rated = [k for k in known if k is not None]
        prior = max(rated) if rated else float(self.grabber.opts.default_speed or 1e6)
        return [prior if k is None else k for k in known]

    def speed_estimate(self, mirror: _Mirror) -> float:
        known = self._known_speed(mirror)
        return self.speeds(self._all)[self._all.index(mirror)] if known is None else known

    def timed_update(self, mirror: _Mirror, nbytes: int, seconds: float, error: bool) -> None:
        timed = self._timed_hosts()
        if timed is not None:
            timed.update(mirror.key, nbytes, seconds, error=error)
            if not self._in_batch:
                timed.save()

    def _timed_hosts(self) -> TimedHosts | None:
        path = self.grabber.opts.timedhosts
        if not path:
            return None
        if self._timed is None or self._timed.path != path:
            opts = self.grabber.opts
            self._timed = TimedHosts(path, half_life=opts.half_life, default_speed=opts.default_speed)
            self._timed.load()
        return self._timed

    def batch_started(self) -> None:
        self._in_batch += 1
        self._timed_hosts()
        for m in self._all:  # a new batch gives every mirror a fresh chance
            m.successes = m.failures = m.streak = 0
            m.cur_limit = None
            m.resting_until = 0.0

    def batch_ended(self) -> None:
        self._in_batch = max(0, self._in_batch - 1)
        if self._timed is not None:
            self._timed.save()


class MGRandomStart(MirrorGroup):
    """Like MirrorGroup, but starts at a random mirror."""

    def __init__(self, grabber: URLGrabber, mirrors: list, **kwargs: Any) -> None:
        super().__init__(grabber, mirrors, **kwargs)
        self._next = random.randrange(len(self.mirrors)) if self.mirrors else 0


class MGRandomOrder(MirrorGroup):
    """Like MirrorGroup, but each download tries the mirrors in a random order."""

    def _order(self, mirrors: list[_Mirror]) -> list[_Mirror]:
        random.shuffle(mirrors)
        return mirrors

    def _start_index(self) -> int:
        return 0


__all__ = ["MGRandomOrder", "MGRandomStart", "MirrorGroup"]
