"""MirrorGroup: one file, many mirrors, with classic urlgrabber's failover hooks.

``mirrors`` are base URLs or dicts ``{'mirror': base, 'grabber': g, 'kwargs':
{...}}``; ``group.mirrors`` is that classic list of dicts (a string becomes
``{'mirror': string}``).  A dict's ``kwargs`` are grabber options for that
mirror, under the caller's per-call options; yum's ``preference`` and
``private`` may be among them and are not passed to the grabber.

What a subclass can rely on:

Blocking (``urlgrab``/``urlread``/``urlopen`` without ``async_``): classic
``_mirror_try(func, url, kw)``.  ``_load_gr(gr)`` fills a ``GrabRequest``; each
try calls ``_get_mirror(gr)`` (errno 256 with ``.errors`` when none is left),
``_join_url(base, rel)`` and then the chosen grabber's public method,
``grabber.urlgrab/urlread/urlopen(fullurl, **kw)``; each failure goes to
``_failure(gr, obj)``, which applies ``failure_callback`` and
``default_action`` through ``increment_mirror(gr, action)``.  When that method
is plain ``URLGrabber``'s, the tries share one engine request instead, so a
body cut on one mirror resumes on the next; the hooks are called the same way.

Batch (``async_``): the engine's scheduler picks the mirror for each attempt
(live private mirrors first, then estimated speed / (1 + load), within each
mirror's ``max_connections``), not ``_get_mirror``/``_failure``.
``_load_gr`` gives a request its candidate mirrors, ``_join_url`` builds every
URL, per-mirror ``kwargs`` apply, and ``failure_callback``/``default_action``
act as in blocking mode.  A mirror that refuses, times out or answers 503/429
loses connection slots and rests; one that never succeeds is skipped.
"""

from __future__ import annotations

import _thread
import os
import time

from . import grabber as _grabber
from ._calls import dest_path, dispatch, make_request, open_stream, per_key_limit, run_blocking
from ._lazy import urlparse as _urlparse
from ._outcome import HEALTH, AttemptResult, Cause, Health, cause_of
from ._request import Binding, CallbackObject, Request, run_callback
from .errors import URLGrabError, redact
from .grabber import URLGrabber, URLParser, _plain_call, _plain_url
from .grabber import _text as _as_str  # a URL (or part) as text, as URLGrabber decodes it

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ._timedhosts import TimedHosts

#: Classic debug logger (a ``logging.Logger``) or None; ``grabber.set_logger`` sets it here too.
DEBUG = getattr(_grabber, "DEBUG", None)

_NOT_OPTIONS = ("preference", "private")  # yum's mirror kwargs that are no grabber options
_KINDS = {"urlgrab": "grab", "urlread": "read", "urlopen": "open"}
_DEAD_AFTER = 3          # failure events, with no success, before a mirror may be given up for the batch...
_GIVE_UP_AFTER = 2.0     # ... and only once it has been failing for this long (an outage of a second is waited out);
_GIVE_UP_WORKED = 10.0   # a mirror that worked earlier in the batch: after this long failing with no success
_BENCH_AFTER = 3         # failure events in a row that bench a mirror: it rests, then gets one probe
_COOLDOWN = 0.25         # first rest after a 503/429/timeout without Retry-After; doubles per event in a row
_MAX_COOLDOWN = 4.0      # (a server's Retry-After may ask for longer, up to _MAX_RETRY_AFTER)
_MAX_RETRY_AFTER = 60.0
_LAST_MIRROR_PAUSE = 0.25  # the last mirror of a file is tried again after this, doubling, with jitter,
_LAST_MIRROR_KEEPS = 3     # this many times (an outage of a second or two is waited out)
# failures that say the mirror could not serve just then (an answer such as a 404 is not one)
_OUTAGES = frozenset({Cause.UNREACHABLE, Cause.RESET, Cause.NETWORK_CUT, Cause.STALL, Cause.BUSY})
# 5xx answers that say "not now" rather than "never" (501 and 505 are never)
_PASSING_5XX = frozenset({500, 502, 504})
_HEDGE_MIN_ETA = 1.0     # a transfer expected to end sooner than this is not worth racing
_HEDGE_SPEEDUP = 3.0     # race only on a mirror estimated this many times faster


def _options_of(grabber: Any) -> Any:
    """A grabber's options; a duck-typed grabber without ``.opts`` gets the default grabber's."""
    opts = getattr(grabber, "opts", None)
    return opts if opts is not None else _grabber.default_grabber.opts


def _grabber_kwargs(kwargs: Any) -> dict:
    return {k: v for k, v in (kwargs or {}).items() if k not in _NOT_OPTIONS}


def _parse(url: Any, opts: Any) -> tuple[str, tuple]:
    """The URL a grabber would fetch (prefix, local path, quoting), as text."""
    url, parts = (opts.urlparser or URLParser()).parse(url, opts)
    return _as_str(url), tuple(_as_str(p) for p in parts)


def _text(value: Any) -> Any:
    """A URL for a message or a log line: text, password removed."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return redact(value)


def _raise(obj: Any) -> Any:
    raise obj.exception


def _stock(grabber: Any, func: str) -> bool:
    """True when ``grabber.<func>`` is plain URLGrabber's method (not overridden or replaced)."""
    method = getattr(grabber, func, None)
    return (isinstance(grabber, URLGrabber) and getattr(method, "__self__", None) is grabber
            and getattr(method, "__func__", None) is getattr(URLGrabber, func))


def _index(mirrors: list, entry: Any) -> int | None:
    for i, m in enumerate(mirrors):
        if m is entry:
            return i
    try:
        return mirrors.index(entry)
    except ValueError:
        return None


def _remove_at(mirrors: list, index: int, next_index: int) -> int:
    """Remove ``mirrors[index]``; the index of the same next mirror afterwards."""
    del mirrors[index]
    return next_index - 1 if next_index > index else next_index


class GrabRequest:
    """Classic per-call state: ``func``, ``url``, ``kw``, the ``mirrors`` left
    (dicts), the ``_next`` index into them, and ``errors`` ((url, message) per failure)."""

    def __init__(self) -> None:
        self.func: str | None = None
        self.url: Any = None
        self.kw: dict = {}
        self.mirrors: list = []
        self._next = 0
        self.errors: list[tuple[str, str]] = []


class _Mirror:
    """What the group knows about one mirror dict: options, connection limit, health."""

    def __init__(self, entry: dict, group: MirrorGroup) -> None:
        raw = entry.get("kwargs") or {}
        self.entry = entry
        self.private = bool(raw.get("private") or entry.get("private"))
        kwargs = _grabber_kwargs(raw)
        self.base = _as_str(entry["mirror"])
        self.key = self.base
        grabber = entry.get("grabber") or group.grabber
        base_opts = _options_of(grabber)
        if not isinstance(grabber, URLGrabber):
            # a duck-typed grabber may take keywords that are no options of ours
            known = vars(base_opts)
            kwargs = {k: v for k, v in kwargs.items() if k in known or k == "async"}
        self.opts = base_opts.derive(**kwargs)
        self.limit = int(kwargs["max_connections"]) if kwargs.get("max_connections") else None
        self.cur_limit: int | None = None
        self.speed = 0.0            # bytes/s seen in this process (0: unknown)
        self.ranges = True          # False: it answered a range request with something else
        self.reset()

    def reset(self) -> None:
        """A fresh chance (a new batch)."""
        self.successes = 0
        self.failures = 0           # failure events (failures at the same time count once)
        self.streak = 0             # failure events since the last success
        self.event_at = 0.0         # when the last failure event was counted
        self.failing_since: float | None = None
        self.resting_until = 0.0
        self.cur_limit = None

    @property
    def dead(self) -> bool:
        """Given up for this batch: it failed again and again, with no success, for a while
        (2 s if it never worked in this batch, 10 s if it did).  Until then a failing
        mirror rests and is probed; one that keeps serving some requests never is."""
        if self.failures < _DEAD_AFTER:
            return False  # (the usual answer, without give_up_at's call: asked per mirror per file)
        give_up_at = self.give_up_at
        return give_up_at is not None and time.monotonic() >= give_up_at

    @property
    def give_up_at(self) -> float | None:
        """When the mirror will be given up for the batch if it keeps failing with no success."""
        if self.failures < _DEAD_AFTER or self.failing_since is None:
            return None
        return self.failing_since + (_GIVE_UP_WORKED if self.successes else _GIVE_UP_AFTER)

    def limit_for(self, default: int) -> int:
        limit = self.limit or default
        if self.cur_limit is not None:
            limit = min(limit, self.cur_limit)
        return max(1, limit)

    def succeeded(self, nbytes: int, seconds: float) -> None:
        self.successes += 1
        self.streak = 0
        self.failing_since = None
        if seconds > 0 and nbytes > 0:
            rate = nbytes / seconds
            self.speed = rate if not self.speed else 0.7 * self.speed + 0.3 * rate
        if self.cur_limit is not None:
            self.cur_limit += 1  # earn slots back
            if self.limit is not None and self.cur_limit >= self.limit:
                self.cur_limit = None

    def failed(self, overloaded: bool, busy: bool, running: int, rest: float | None,
               started: float) -> None:
        """A failed attempt that ``started`` at that monotonic time.  ``overloaded``:
        fewer connections; ``busy`` (503/429/timeout): rest too.

        Failures of attempts that were already running when the last failure was
        counted are the same event (one outage, or one burst of stalls, times out
        every transfer at once): they count once.  After _BENCH_AFTER events in a
        row the mirror rests, doubling, and then takes one probe at a time.
        """
        now = time.monotonic()
        if started < self.event_at:
            return  # the same event as the last failure
        self.event_at = now
        self.failures += 1
        self.streak += 1
        if self.failing_since is None:
            self.failing_since = now
        if overloaded:
            if running == float("inf"):
                running = 1  # a full multiplexed connection that libcurl 7 may not add to (_scheduler)
            self.cur_limit = max(1, min(self.cur_limit or running, running) - 1) if running > 1 else 1
        if self.streak >= _BENCH_AFTER:
            self.cur_limit = 1  # back from its rest: one probe at a time until a success
        if busy or self.streak >= _BENCH_AFTER:
            pause = (min(_COOLDOWN * 2 ** (self.streak - 1), _MAX_COOLDOWN) if rest is None
                     else min(rest, _MAX_RETRY_AFTER))
            self.resting_until = max(self.resting_until, now + pause)


# ---------------------------------------------------------------------------
# blocking mode: classic _mirror_try
# ---------------------------------------------------------------------------


class _Choice:
    """One try: the mirror dict ``_get_mirror`` gave, its full URL and grabber."""

    __slots__ = ("entry", "fullurl", "grabber", "mirror")

    def __init__(self, entry: dict, fullurl: Any, grabber: Any, mirror: _Mirror) -> None:
        self.entry = entry
        self.fullurl = fullurl
        self.grabber = grabber
        self.mirror = mirror


class _Handoff(URLGrabError):
    """Ends an engine request whose next mirror needs its grabber's own method."""

    def __init__(self, choice: _Choice) -> None:
        super().__init__(256, "next mirror needs its grabber's own method")
        self.choice = choice


class _Call:
    """One blocking call: the tries of classic ``_mirror_try``, every hook in classic order."""

    def __init__(self, group: MirrorGroup, gr: GrabRequest, kw: dict) -> None:
        self.group = group
        self.gr = gr
        self.kw = kw
        self.kind = _KINDS[gr.func]
        self.tries = 0
        # classic loops for ever when every mirror fails with remove=0; stop after 3 rounds
        self.cap = max(3, 3 * len(gr.mirrors))

    def next(self) -> _Choice:
        gr, group = self.gr, self.group
        if self.tries >= self.cap and gr.errors:
            raise URLGrabError(256, f"No more mirrors to try: {_text(gr.url)} ({self.tries} tries)",
                               url=_text(gr.url), errors=gr.errors)
        self.tries += 1
        entry = group._get_mirror(gr)
        fullurl = group._join_url(entry["mirror"], gr.url)
        grabber = entry.get("grabber") or group.grabber
        if DEBUG:
            DEBUG.info("MIRROR: trying %s -> %s", _text(gr.url), _text(fullurl))
        return _Choice(entry, fullurl, grabber, group._state(entry))

    def failed(self, choice: _Choice, err: URLGrabError) -> None:
        if DEBUG:
            DEBUG.info("MIRROR: failed")
        url = _text(choice.fullurl)
        self.gr.errors.append((url, str(err)))
        obj = CallbackObject(exception=err, mirror=choice.entry["mirror"], relative_url=self.gr.url,
                             url=url, tries=self.tries)
        self.group._failure(self.gr, obj)

    def call_kwargs(self, choice: _Choice) -> dict:
        """The mirror's kwargs under the caller's (which win), minus yum's non-options."""
        kw = _grabber_kwargs(choice.entry.get("kwargs"))
        kw.update(self.kw)
        return kw

    def plan(self, choice: _Choice) -> tuple[Any, str, tuple] | None:
        """Options and URL when the try can run as an engine request (plain URLGrabber
        method, not a local file), else None.  A bad option name raises (errno 1)."""
        if not _stock(choice.grabber, self.gr.func):
            return None
        kw = self.call_kwargs(choice)
        kw.pop("filename", None)
        kw.pop("limit", None)
        opts = _options_of(choice.grabber).derive(**kw)
        if getattr(opts, "logspec", None) is not None:
            opts.set_loglevel(opts.logspec)  # as URLGrabber's methods do
        try:
            url, parts = _parse(choice.fullurl, opts)
        except URLGrabError:
            return None  # the grabber's own method reports it, as a failed try
        if parts[0] == "file":
            return None
        return opts, url, parts

    def run(self) -> Any:
        choice = None
        while True:
            if choice is None:
                choice = self.next()
            current, choice = choice, None
            plan = self.plan(current)
            if plan is not None:
                result, choice = self.run_request(current, plan)
                if choice is None:
                    return result
                continue
            started = time.monotonic()
            try:
                result = getattr(current.grabber, self.gr.func)(current.fullurl, **self.call_kwargs(current))
            except URLGrabError as e:
                self.group._record_call(current.mirror, e, time.monotonic() - started)
                self.failed(current, e)
                continue
            self.group._record_call(current.mirror, None, time.monotonic() - started, result)
            return result

    def run_request(self, choice: _Choice, plan: tuple) -> tuple[Any, _Choice | None]:
        """Run the tries as one engine request from ``choice`` on: (result, None), or
        (None, the next choice) when that one needs its grabber's own method."""
        opts, url, parts = plan
        filename = limit = None
        if self.kind == "grab":
            filename = self.kw.get("filename")
            if filename is None:
                filename = os.path.basename(_urlparse.unquote(parts[2])) or "index.html"
            filename = dest_path(filename)
        elif self.kind == "read":
            limit = self.kw.get("limit")
        source = _CallSource(self, choice, opts, url)
        req = make_request(opts.derive(async_=None, failfunc=_raise), self.kind, url,
                           filename=filename, limit=limit, source=source)
        try:
            if self.kind == "open":
                return open_stream(req), None
            return run_blocking(req), None
        except _Handoff as handoff:
            return None, handoff.choice


class _CallSource:
    """A blocking call's engine request: each next mirror comes from the group's hooks."""

    group = None  # a blocking call keeps no batch state

    def __init__(self, call: _Call, choice: _Choice, opts: Any, url: str) -> None:
        self.call = call
        self.lane = ("mirror-call", id(self))
        self._use(choice, opts, url)

    def _use(self, choice: _Choice, opts: Any, url: str) -> None:
        self.choice = choice
        self.binding = Binding(url, choice.mirror.key, opts, choice.mirror)

    def bind(self, req: Request, active: Mapping[Any, Any]) -> Binding | None:
        if req.segments is not None and self.binding.key in req.avoid_keys():
            return None  # it refused this file's ranges: the request starts over once they end
        return self.binding

    def attempt_ended(self, req: Request, binding: Binding, result: AttemptResult,
                      transfer: Any, active: Mapping[Any, Any]) -> None:
        self.call.group._record_transfer(binding.mirror, result, transfer, active)

    def hedge_binding(self, req: Request, transfer: Any, rate: float, remaining: int,
                      active: Mapping[Any, Any]) -> Binding | None:
        return None  # the classic hooks choose one mirror at a time

    def max_segments(self, req: Request) -> int | None:
        return req.opts.segments or 1  # the current mirror only, as ``segments`` asks

    def segment_binding(self, req: Request, active: Mapping[Any, Any], avoid: Any) -> Binding | None:
        binding = self.binding
        return None if binding.key in avoid else binding

    def refuses_ranges(self, binding: Binding) -> None:
        return None

    def next_wakeup(self) -> float | None:
        return None

    def failover(self, req: Request, result: AttemptResult) -> URLGrabError | None:
        err = result.error
        call = self.call
        try:
            call.failed(self.choice, err)
            choice = call.next()
            plan = call.plan(choice)
        except URLGrabError as e:
            return e
        streaming = req.kind == "open" and req.body_started
        if plan is None or choice.grabber is not self.choice.grabber:
            # its own grabber's method next (a stream already handed out cannot move there)
            return err if streaming else _Handoff(choice)
        self._use(choice, plan[0], plan[1])
        return None


# ---------------------------------------------------------------------------
# batch mode: the engine's scheduler binds each attempt to a mirror
# ---------------------------------------------------------------------------


class _Plan:
    """A queued request's candidate mirrors (from ``_load_gr``) and classic start index."""

    def __init__(self, mirrors: list[_Mirror], start: int) -> None:
        self.mirrors = list(mirrors)
        self._next = start % len(self.mirrors) if self.mirrors else 0


class _MirrorSource:
    """A queued request's source: binds each attempt to the best mirror free now."""

    def __init__(self, group: MirrorGroup, rel: Any, kwargs: dict, plan: _Plan,
                 callback: Any, default_action: dict | None) -> None:
        self.group = group
        self.lane = ("mirror-group", id(group))
        self.rel = rel
        self.kwargs = kwargs  # the call's options, checked (``_overlay``'s values)
        self.gr = plan
        self.callback = callback
        self.default_action = default_action or {}
        self._cache: dict[int, tuple[str, Any, URLGrabError | None]] = {}
        self._kept = 0  # times the file's last mirror was kept after a transient failure
        self._default_limit: int | None = None  # per_key_limit of the request's options

    def _binding(self, mirror: _Mirror, error: URLGrabError | None = None) -> Binding:
        cached = self._cache.get(id(mirror))
        if cached is None:
            opts = mirror.opts._overlay(self.kwargs) if self.kwargs else mirror.opts
            url = _as_str(self.group._join_url(mirror.entry["mirror"], self.rel))
            bad = None
            if not _plain_call(opts, url):  # (the parser would accept a plain URL as it is)
                try:
                    url = _parse(url, opts)[0]
                except URLGrabError as e:
                    bad = e
            cached = self._cache[id(mirror)] = (url, opts, bad)
        url, opts, bad = cached
        return Binding(url, mirror.key, opts, mirror, error or bad)

    def bind(self, req: Request, active: Mapping[Any, Any]) -> Binding | None:
        now = time.monotonic()
        mirrors = self.gr.mirrors
        if not mirrors:
            return None
        alive = [m for m in mirrors if not m.dead]
        if not alive:
            # every mirror left for this file kept failing in this batch: say so
            # without another connection (a blackholed mirror would cost `timeout`)
            m = mirrors[0]
            url = self._binding(m).url
            return self._binding(m, URLGrabError(
                14, f"Mirror skipped, it failed {m.failures} times in this batch: {redact(url)}",
                url=url))
        awake = [m for m in alive if m.resting_until <= now]
        segs = req.segments
        if segs is not None and segs.split:  # a segment of a split download: where ranges work
            avoid = segs.avoid
            awake = [m for m in awake if m.ranges and m.key not in avoid]
        if not awake:
            return None
        default_limit = self._default_limit
        if default_limit is None:  # (the request's options do not change: worked out once)
            default_limit = self._default_limit = per_key_limit(req.opts)
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
                      active: Mapping[Any, Any]) -> Binding | None:
        """Slow tail: an idle, healthy mirror expected to deliver the rest much sooner."""
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
        binding = self._binding(best)
        return None if binding.error is not None else binding

    def attempt_ended(self, req: Request, binding: Binding, result: AttemptResult,
                      transfer: Any, active: Mapping[Any, Any]) -> None:
        self.group._record_transfer(binding.mirror, result, transfer, active)

    def max_segments(self, req: Request) -> int | None:
        """A large file is split over idle mirrors unless ``segments`` caps it."""
        return req.opts.segments

    def segment_binding(self, req: Request, active: Mapping[Any, Any], avoid: Any) -> Binding | None:
        """The best healthy mirror with a free connection that serves ranges."""
        now = time.monotonic()
        default_limit = per_key_limit(req.opts)
        free = [m for m in self.gr.mirrors
                if m.ranges and m.key not in avoid and not m.dead and m.resting_until <= now
                and active.get(m.key, 0) < m.limit_for(default_limit)]
        if not free:
            return None
        speeds = self.group.speeds(free)
        best = max(zip(free, speeds), key=lambda ms: (-ms[0].streak, ms[1] / (1 + active.get(ms[0].key, 0))))[0]
        binding = self._binding(best)
        return None if binding.error is not None else binding

    def refuses_ranges(self, binding: Binding) -> None:
        if binding.mirror is not None:
            binding.mirror.ranges = False  # whole files only, for the rest of the group's life

    def next_wakeup(self) -> float | None:
        """When the first of this request's resting mirrors may take it."""
        now = time.monotonic()
        times = [t for m in self.gr.mirrors if not m.dead
                 for t in (m.resting_until, m.give_up_at) if t is not None and t > now]
        return min(times) if times else None

    def failover(self, req: Request, result: AttemptResult) -> URLGrabError | float | None:
        """Apply the failure actions: None, another mirror will be tried; seconds, the
        last mirror is tried again after that pause (its failure looked transient);
        else the final error."""
        err = result.error
        gr = self.gr
        binding = req.binding
        mirror = binding.mirror if binding is not None else None
        action = dict(self.group.default_action or {})
        action.update(self.default_action)
        if self.callback is not None:
            obj = CallbackObject(req.opts, exception=err, mirror=mirror.entry["mirror"] if mirror else None,
                                 relative_url=self.rel, url=redact(binding.url) if binding else None,
                                 tries=req.tries, filename=req.filename)
            try:
                returned = run_callback(self.callback, obj)
            except URLGrabError as e:
                e.errors = list(req.errors)
                return e
            action.update(returned or {})
        pause = None
        if mirror is not None:
            self.group._apply_master_action(mirror, action)
            if mirror in gr.mirrors:
                index = gr.mirrors.index(mirror)
                if (action.get("remove", 1) and len(gr.mirrors) == 1 and self._kept < _LAST_MIRROR_KEEPS
                        and not action.get("remove_master", 0) and self._transient(result, mirror)):
                    # the last mirror is tried again after a pause, not failed at once
                    pause = self._last_mirror_pause()
                elif action.get("remove", 1):
                    gr._next = _remove_at(gr.mirrors, index, gr._next)
                elif action.get("increment", 1):
                    gr._next = index + 1
                if gr.mirrors:
                    gr._next %= len(gr.mirrors)
        if action.get("fail", 0):
            err.errors = list(req.errors)
            return err
        cap = max(3, 3 * len(self.group.mirrors)) * max(1, req.opts.retry or 1)
        if not gr.mirrors or req.attempts >= cap:
            return URLGrabError(256, f"No more mirrors to try: {_text(self.rel)}", url=_text(self.rel),
                                errors=list(req.errors), exception=err)
        return pause

    @staticmethod
    def _transient(result: AttemptResult, mirror: _Mirror) -> bool:
        """A failure worth waiting out on this mirror: it could not serve (refused, reset,
        stalled, busy, a passing 500/502/504), as opposed to an answer that will not
        change (a 404, a 501), and the mirror is not given up."""
        if result.final or mirror.dead:
            return False
        if result.cause is Cause.SERVER_ERROR:
            return result.error is not None and result.error.code in _PASSING_5XX
        return result.cause in _OUTAGES

    def _last_mirror_pause(self) -> float:
        """Seconds before the last mirror is tried again: doubling, with jitter."""
        import random  # (not at start-up: see _policy.Retry.delay)

        self._kept += 1
        return _LAST_MIRROR_PAUSE * 2 ** (self._kept - 1) * random.uniform(0.5, 1.0)


# ---------------------------------------------------------------------------
# the group
# ---------------------------------------------------------------------------


class MirrorGroup:
    """Grab files from a list of mirrors, failing over between them (classic API).

    ``MirrorGroup(grabber, mirrors, failure_callback=None, default_action=None)``.
    ``mirrors``: base URLs or dicts ``{'mirror': base, 'grabber': g, 'kwargs':
    {...}}`` (``kwargs['max_connections']`` limits that mirror's connections in a
    batch; ``kwargs['private']`` prefers a live mirror at start and in a batch).
    ``default_action`` keys: ``remove`` (1), ``increment`` (1), ``remove_master``
    (0), ``increment_master`` (1), ``fail`` (0); a per-call ``default_action`` and
    what ``failure_callback(obj)`` returns override them in that order (obj:
    ``exception, mirror, relative_url, url, tries``).

    Overridable, classic: ``_process_kwargs``, ``_parse_mirrors``, ``_load_gr``,
    ``_get_mirror``, ``_failure``, ``increment_mirror``, ``_join_url`` and
    ``_mirror_try``.  Blocking calls run them all and call the chosen grabber's
    own ``urlgrab``/``urlread``/``urlopen`` (a duck-typed grabber will do);
    a batch uses ``_load_gr``, ``_join_url``, per-mirror ``kwargs``,
    ``failure_callback`` and ``default_action``, while the mirror of each
    attempt is chosen by the engine's scheduler (see the module docstring).
    """

    # per-call keywords that belong to the group: never passed to the grabber
    options = ["default_action", "failure_callback"]

    def __init__(self, grabber: Any, mirrors: list, failure_callback: Any = None,
                 default_action: dict | None = None, **kwargs: Any) -> None:
        self.grabber = grabber
        self._lock = _thread.allocate_lock()  # (classic's; threading costs ~6 M instructions at start-up)
        self._health: dict[int, _Mirror] = {}
        self._timed: TimedHosts | None = None
        self._in_batch = 0
        self.mirrors = self._parse_mirrors(mirrors)
        self._next = 0
        self.default_action = None
        if failure_callback is not None:
            kwargs["failure_callback"] = failure_callback
        if default_action is not None:
            kwargs["default_action"] = default_action
        self._process_kwargs(kwargs)
        for m in self.mirrors:  # a bad option in a mirror's kwargs is errno 1 now
            if id(m) not in self._health:
                self._health[id(m)] = _Mirror(m, self)
        self._sort_mirrors()

    # -- classic configuration methods ---------------------------------------

    def _process_kwargs(self, kwargs: dict) -> None:
        self.failure_callback = kwargs.get("failure_callback")
        self.default_action = kwargs.get("default_action")

    def _parse_mirrors(self, mirrors: list) -> list:
        return [{"mirror": m} if isinstance(m, (str, bytes)) else m for m in mirrors]

    def _sort_mirrors(self) -> None:
        """Classic start order: live private mirrors first, then by recorded speed (stable)."""
        timed = self._timed_hosts()
        states = {id(m): self._state(m) for m in self.mirrors}
        if timed is None and not any(s.private for s in states.values()):
            return

        def estimate(entry: dict) -> tuple[bool, float]:
            state = states[id(entry)]
            if timed is None:
                return state.private, 0.0
            return state.private and not timed.failures(state.key), timed.speed(state.key)

        self.mirrors.sort(key=estimate, reverse=True)

    def _load_gr(self, gr: GrabRequest) -> None:
        with self._lock:
            gr.mirrors = list(self.mirrors)
            gr._next = self._next

    def _get_mirror(self, gr: GrabRequest) -> dict:
        if not gr.mirrors:
            raise URLGrabError(256, f"No more mirrors to try: {_text(gr.url)}", url=_text(gr.url),
                               errors=gr.errors)
        return gr.mirrors[gr._next]

    def _failure(self, gr: GrabRequest, cb_obj: Any) -> None:
        cb = gr.kw.get("failure_callback") or self.failure_callback
        action = (run_callback(cb, cb_obj) or {}) if cb else {}
        merged = dict(self.default_action or {})
        merged.update(gr.kw.get("default_action") or {})
        merged.update(action)
        self.increment_mirror(gr, merged)
        if merged.get("fail", 0):
            err = cb_obj.exception
            err.errors = gr.errors
            raise err

    def increment_mirror(self, gr: GrabRequest | None = None, action: dict | None = None) -> None:
        """Move past ``gr``'s current mirror, for this download and (per ``action``) the group.

        Semi-public, as in classic.  Without ``gr`` the group's start mirror moves on.
        """
        action = action or {}
        if gr is None:
            with self._lock:
                if self.mirrors:
                    self._next = (self._next + 1) % len(self.mirrors)
            return
        if not gr.mirrors:
            return
        bad = gr.mirrors[gr._next]
        with self._lock:
            ind = _index(self.mirrors, bad)
            if ind is not None:
                if action.get("remove_master", 0):
                    del self.mirrors[ind]
                elif self._next == ind and action.get("increment_master", 1):
                    self._next += 1
                if self._next >= len(self.mirrors):
                    self._next = 0
        if action.get("remove", 1):
            del gr.mirrors[gr._next]
        elif action.get("increment", 1):
            gr._next += 1
        if gr._next >= len(gr.mirrors):
            gr._next = 0
        if DEBUG:
            DEBUG.info("GR   mirrors: [%s] %i", " ".join(_text(m["mirror"]) for m in gr.mirrors), gr._next)
            DEBUG.info("MAIN mirrors: [%s] %i", " ".join(_text(m["mirror"]) for m in self.mirrors), self._next)

    def _join_url(self, base_url: Any, rel_url: Any) -> Any:
        """``base_url`` + ``rel_url`` with one '/' between, keeping the base's query and
        fragment (classic; bytes in, bytes out).  Subclasses may override it (osc does)."""
        if _plain_url(base_url) and type(rel_url) is str and "?" not in base_url:
            # (a plain base, no query: what the split and join below make of it, without them)
            if base_url.endswith("/") and rel_url.startswith("/"):
                rel_url = rel_url[1:]
            if base_url.endswith("/") or rel_url.startswith("/"):
                return base_url + rel_url
            return base_url + "/" + rel_url
        scheme, netloc, path, query, fragid = _urlparse.urlsplit(base_url)
        if isinstance(base_url, bytes):
            if not isinstance(rel_url, bytes):
                rel_url = rel_url.encode("utf-8")
            slash = b"/"
        else:
            rel_url = _as_str(rel_url)
            slash = "/"
        if path.endswith(slash) and rel_url.startswith(slash):
            rel_url = rel_url[1:]  # classic doubled it here
        sep = slash[:0] if path.endswith(slash) or rel_url.startswith(slash) else slash
        return _urlparse.urlunsplit((scheme, netloc, path + sep + rel_url, query, fragid))

    def _mirror_try(self, func: str, url: Any, kw: dict) -> Any:
        """Classic blocking loop: try mirrors until one works (see the module docstring)."""
        gr = GrabRequest()
        gr.func = func
        gr.url = url
        gr.kw = dict(kw)
        self._load_gr(gr)
        gr.errors = []
        for k in self.options:
            kw.pop(k, None)
        return _Call(self, gr, kw).run()

    # -- classic public methods ----------------------------------------------

    def urlgrab(self, url: Any, filename: str | None = None, **kwargs: Any) -> str:
        """Download ``url`` (relative to the mirrors) to ``filename``; return the filename.

        With ``async_`` (or ``async``) set it is queued for the batch; otherwise
        ``failfunc`` is called with the final error and its return value returned.
        """
        kw = dict(kwargs)
        if kw.get("async_") or kw.get("async"):
            return self._queue(url, filename, kw)
        kw.pop("async_", None)
        kw.pop("async", None)
        failfunc = kw.pop("failfunc", None)
        kw["filename"] = filename
        try:
            return self._mirror_try("urlgrab", url, kw)
        except URLGrabError as e:
            if failfunc is None:
                raise
            obj = CallbackObject()
            obj.__dict__.update(kwargs)
            obj.__dict__.update(url=url, filename=filename, exception=e)
            return run_callback(failfunc, obj)

    def urlread(self, url: Any, limit: int | None = None, **kwargs: Any) -> bytes:
        """Return the body of ``url`` (relative to the mirrors)."""
        kw = dict(kwargs)
        kw.pop("async_", None)
        kw.pop("async", None)
        kw["limit"] = limit
        return self._mirror_try("urlread", url, kw)

    def urlopen(self, url: Any, **kwargs: Any) -> Any:
        """Open ``url`` (relative to the mirrors) as a stream."""
        kw = dict(kwargs)
        kw.pop("async_", None)
        kw.pop("async", None)
        return self._mirror_try("urlopen", url, kw)

    # -- batch -----------------------------------------------------------------

    def _queue(self, url: Any, filename: str | None, kwargs: dict) -> str:
        if "async" in kwargs:
            kwargs["async_"] = kwargs.pop("async")
        gr = GrabRequest()
        gr.func = "urlgrab"
        gr.url = url
        gr.kw = dict(kwargs, filename=filename)
        callback = kwargs.pop("failure_callback", None) or self.failure_callback
        default_action = kwargs.pop("default_action", None)
        rel = _as_str(url)
        self._load_gr(gr)
        if not gr.mirrors:
            raise URLGrabError(256, f"No more mirrors to try: {_text(rel)}", url=_text(rel), errors=[])
        opts = _options_of(self.grabber).derive(**kwargs)
        # the call's options as checked (each mirror's options get them on top, unchecked again)
        checked = {name: getattr(opts, name) for name in kwargs}
        if filename is None:
            filename = rel.rstrip("/").rsplit("/", 1)[-1] or "index.html"
        plan = _Plan([self._state(m) for m in gr.mirrors], gr._next)
        source = _MirrorSource(self, url, checked, plan, callback, default_action)
        return dispatch(make_request(opts, "grab", rel, filename=dest_path(filename), source=source))

    def _apply_master_action(self, mirror: _Mirror, action: dict) -> None:
        with self._lock:
            index = _index(self.mirrors, mirror.entry)
            if index is None:
                return
            if action.get("remove_master", 0):
                self._next = _remove_at(self.mirrors, index, self._next)
            elif self._next == index and action.get("increment_master", 1):
                self._next += 1
            if self._next >= len(self.mirrors):
                self._next = 0

    # -- per-mirror state and health -----------------------------------------

    def _state(self, entry: dict) -> _Mirror:
        """The state kept for a mirror dict (a copy of a known dict shares its state)."""
        state = self._health.get(id(entry))
        if state is not None and state.entry is entry:
            return state
        for state in list(self._health.values()):
            if state.entry == entry:
                return state
        state = self._health[id(entry)] = _Mirror(entry, self)
        return state

    def _record_transfer(self, mirror: _Mirror | None, result: AttemptResult, transfer: Any,
                         active: Mapping[Any, Any]) -> None:
        """An engine attempt on ``mirror`` ended: its health and the timedhosts file."""
        if mirror is None:
            return
        seconds = time.monotonic() - transfer.started if transfer is not None else 0.0
        nbytes = transfer.received if transfer is not None else 0
        if result.ok:
            mirror.succeeded(nbytes, seconds)
            self.timed_update(mirror, nbytes, seconds, False)
            return
        self._record_failure(mirror, result.health, nbytes, seconds, result.retry_after,
                             active.get(mirror.key, 0), transfer.started if transfer is not None else 0.0)

    def _record_call(self, mirror: _Mirror, err: URLGrabError | None, seconds: float,
                     result: Any = None) -> None:
        """A grabber's own method returned or raised for ``mirror``: the same bookkeeping."""
        if err is None:
            if isinstance(result, bytes):
                nbytes = len(result)
            elif isinstance(result, str) and os.path.isfile(result):
                nbytes = os.path.getsize(result)
            else:
                nbytes = 0
            mirror.succeeded(nbytes, seconds)
            self.timed_update(mirror, nbytes, seconds, False)
            return
        self._record_failure(mirror, HEALTH[cause_of(err)], 0, seconds, None, 0, time.monotonic() - seconds)

    def _record_failure(self, mirror: _Mirror, health: Health, nbytes: int, seconds: float,
                        rest: float | None, running: int, started: float) -> None:
        """A failed attempt, as the failure table judges it (``Health``)."""
        if health is Health.NONE:
            return  # a missing file, a rejected body, our own disk: not the mirror's doing
        mirror.failed(health in (Health.OVERLOADED, Health.RESTING), health is Health.RESTING,
                      running + 1, rest, started)
        self.timed_update(mirror, nbytes, seconds, True)

    def _known_speed(self, mirror: _Mirror) -> float | None:
        if mirror.speed:
            return mirror.speed
        timed = self._timed
        if timed is not None and timed.known(mirror.key):
            return timed.speed(mirror.key)
        return None

    def _prior(self, mirrors: list[_Mirror]) -> float:
        return self._prior_of([self._known_speed(m) for m in mirrors])

    def _prior_of(self, known: list[float | None]) -> float:
        """The rate assumed for a mirror with no history: the best known one's."""
        rated = [k for k in known if k is not None]
        return max(rated) if rated else float(_options_of(self.grabber).default_speed or 1e6)

    def speeds(self, mirrors: list[_Mirror]) -> list[float]:
        """Estimated bytes/s per mirror.  One with no history is rated like the
        best known one, so it gets tried, and the classic order breaks the tie."""
        known = [self._known_speed(m) for m in mirrors]
        if None not in known:
            return known  # (every mirror rated: the usual case once a batch runs)
        prior = self._prior_of(known)
        return [prior if k is None else k for k in known]

    def speed_estimate(self, mirror: _Mirror) -> float:
        known = self._known_speed(mirror)
        return self._prior(list(self._health.values())) if known is None else known

    def timed_update(self, mirror: _Mirror, nbytes: int, seconds: float, error: bool) -> None:
        timed = self._timed_hosts()
        if timed is not None:
            timed.update(mirror.key, nbytes, seconds, error=error)
            if not self._in_batch:
                timed.save()

    def _timed_hosts(self) -> TimedHosts | None:
        opts = _options_of(self.grabber)
        path = opts.timedhosts
        if not path:
            # classic: yum sets the batch-wide file on the default grabber at start-up
            opts = _grabber.default_grabber.opts
            path = opts.timedhosts
        if not path:
            return None
        if self._timed is None or self._timed.path != os.fspath(path):
            from ._timedhosts import TimedHosts  # (only groups with a timedhosts file need it)

            self._timed = TimedHosts(path, half_life=opts.half_life, default_speed=opts.default_speed)
        return self._timed

    def batch_started(self) -> None:
        self._in_batch += 1
        self._timed_hosts()
        for m in list(self._health.values()):  # a new batch gives every mirror a fresh chance
            m.reset()

    def batch_ended(self) -> None:
        self._in_batch = max(0, self._in_batch - 1)
        if self._timed is not None:
            self._timed.save()


class MGRandomStart(MirrorGroup):
    """Like MirrorGroup, but starts at a random mirror."""

    def __init__(self, grabber: Any, mirrors: list, **kwargs: Any) -> None:
        super().__init__(grabber, mirrors, **kwargs)
        import random

        self._next = random.randrange(len(self.mirrors)) if self.mirrors else 0


class MGRandomOrder(MirrorGroup):
    """Like MirrorGroup, but the mirrors are used in a random order.

    As in classic, ``mirrors`` is shuffled once at creation; each download then
    tries its copy of the list in a new random order too, so load is spread.
    """

    def __init__(self, grabber: Any, mirrors: list, **kwargs: Any) -> None:
        super().__init__(grabber, mirrors, **kwargs)
        import random

        random.shuffle(self.mirrors)

    def _load_gr(self, gr: GrabRequest) -> None:
        super()._load_gr(gr)
        import random

        random.shuffle(gr.mirrors)
        gr._next = 0


__all__ = ["GrabRequest", "MGRandomOrder", "MGRandomStart", "MirrorGroup"]
