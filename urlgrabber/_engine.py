"""The event loop: one ``pycurl.CurlMulti`` driven by its socket and timer callbacks.

libcurl tells us (M_SOCKETFUNCTION) which sockets to watch, and we ask it
(``multi.timeout()``) when to wake it next, once per loop step rather than
in a callback each time its timer moves (about twice per transfer); we wait
with epoll (poll where there is none).  One loop
step (``_step``, like asyncio's ``_run_once``) reads top to bottom:

1. compute the poll timeout (curl's timer, the stall check, the next wake-up
   of a delayed retry or a resting mirror; none when a socket_action made
   outside phases 3 and 4 may have ended transfers there and then);
2. poll;
3. dispatch socket events to ``socket_action``; while the loop waits on the
   network rather than on its own work, a transfer an event ends is concluded
   there and then (its connection's next request goes out before the other
   ready sockets are read);
4. fire curl's timer;
5. drain finished transfers: each request decides what its attempt meant;
6. housekeeping: stalled transfers, slow-tail races;
7. idle connections: more segments for split downloads (_segments.py).

``_loop`` then starts whatever the scheduler allows.  No threads, no busy loop.
"""

from __future__ import annotations

import _thread  # (not threading: ~6 M instructions at start-up, for a thread-local)
import atexit
import select
import time

try:  # the C functions under the signal module: a tenth of its wrappers' cost (enum conversions),
    import _signal as _sig  # and no `import signal` (~1 ms at start-up)
except ImportError:  # not CPython
    import signal as _sig  # type: ignore[no-redef]

from ._curl import INFO_CONTENT_LENGTH, INFO_SIZE_DOWNLOAD, Handle
from ._libcurl import CALLBACKS, callback, pycurl
from ._outcome import AttemptResult
from ._request import DONE, FAILED, FAILOVER, FINISHED, RETRY, SEGMENT_WAITING, Binding, Request, State
from ._scheduler import Scheduler
from ._transfer import Transfer
from .errors import URLGrabError, redact, scrub

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

_IN = select.POLLIN      # == EPOLLIN
_OUT = select.POLLOUT    # == EPOLLOUT
_ERR = select.POLLERR    # == EPOLLERR
_HUP = select.POLLHUP    # == EPOLLHUP
_MAX_WAIT = 1.0  # never sleep longer than this without looking again
_POOL_MAX = 64
_MAX_KEPT_CONNECTIONS = 256  # idle keep-alive connections the multi may hold (across hosts)
_WATCH_INTERVAL = 0.25  # how often running transfers are checked for stalls and slow tails
_KICK_AFTER = 2.0  # a transfer quiet this long: libcurl looks at every watched socket again
_HEDGE_MIN_AGE = 0.5    # a transfer younger than this has no meaningful rate yet
# A poll that slept this long: the loop waits on the network, not on its own work.  For
# as long again after such a poll (at most _PROMPT_SPAN), a transfer that a socket event
# ends is concluded at once (_dispatch); when polls do not sleep (the loop is busy, and a
# server's hiccup buys only its own length), each step concludes its transfers together,
# which costs fewer calls per file.
_SLEPT = 0.001
_PROMPT_SPAN = 0.010
# curl errors that, on a reused connection, may be the previous response's leftovers
_GARBLED = frozenset((1, 8))
# HTTP/2 and HTTP/3 (libcurl's INFO_HTTP_VERSION): connections that multiplex
_MULTIPLEXED = pycurl.CURL_HTTP_VERSION_2_0
_CONN_ID = getattr(pycurl, "CONN_ID", None)  # libcurl >= 8.2: which connection a transfer is on
# libcurl's socket callback and socket_action flags, as plain globals for the callbacks
_POLL_IN, _POLL_OUT, _POLL_REMOVE = pycurl.POLL_IN, pycurl.POLL_OUT, pycurl.POLL_REMOVE
_SOCKET_TIMEOUT = pycurl.SOCKET_TIMEOUT
_CSELECT_IN, _CSELECT_OUT, _CSELECT_ERR = pycurl.CSELECT_IN, pycurl.CSELECT_OUT, pycurl.CSELECT_ERR
# socket_action's flags for each poll result (IN, PRI, OUT, ERR and HUP: the low 5 bits)
_CSELECT = tuple((_CSELECT_IN if mask & (_IN | _HUP | _ERR) else 0) | (_CSELECT_OUT if mask & _OUT else 0)
                 | (_CSELECT_ERR if mask & _ERR else 0) for mask in range(32))
# what the socket callback's POLL_NONE, POLL_IN, POLL_OUT and POLL_INOUT ask the poller for
_EVENTS = tuple((_IN if what & _POLL_IN else 0) | (_OUT if what & _POLL_OUT else 0) for what in range(4))
_SIGTERM = int(_sig.SIGTERM)
_SIGINT = int(_sig.SIGINT)
_SIG_DFL = int(_sig.SIG_DFL)


class Engine:
    """Runs requests to completion on one CurlMulti; one engine per thread."""

    def __init__(self) -> None:
        multi = self.multi = pycurl.CurlMulti()
        # its methods the loop calls per transfer, fetched once (pycurl's look-up costs more than the call)
        self._add_handle, self._remove_handle = multi.add_handle, multi.remove_handle
        self._socket_action = multi.socket_action
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        # keep-alive connections kept between transfers: by default libcurl keeps
        # 4 x the handles added at the moment, too few between waves (a dip to
        # 1-2 handles closed good connections with libcurl 8.16)
        self.multi.setopt(pycurl.M_MAXCONNECTS, _MAX_KEPT_CONNECTIONS)
        if hasattr(select, "epoll"):
            self._poller: Any = select.epoll()
            self._poll_unit = 1.0     # epoll.poll takes seconds
        else:
            self._poller = select.poll()
            self._poll_unit = 1000.0  # poll.poll takes milliseconds
        # fd -> events libcurl wants; 0: libcurl let go of it ("parked") but it
        # stays registered, since a kept-alive connection is usually wanted
        # again by the next transfer, which then costs one modify, not two calls
        self._watched: dict[int, int] = {}
        self._deadline: float | None = None  # when libcurl wants socket_action(TIMEOUT) (_poll_timeout)
        # a socket_action outside the dispatch and timer phases (or an unpause) may have
        # ended transfers there and then (file://, or a response already in the socket
        # buffer, which libcurl 7.x reads at once): the next poll must not wait for them
        self._unread = False
        self._pool: list[Handle] = []
        self._running: dict[pycurl.Curl, Transfer] = {}
        self._stashed: BaseException | None = None
        self._next_watch = 0.0
        self._next_kick = 0.0
        self._polled_at = 0.0     # when the current step's poll was entered
        self._prompt_until = 0.0  # conclude ended transfers at once until then (_waiting_on_network)
        self._stream_cap = 0  # the multi's CURLMOPT_MAX_CONCURRENT_STREAMS, as last set
        self._segmented: set[Request] = set()  # split downloads that may take more connections
        self._grow_due = False                   # ... and a reason to offer them some
        self._probes: list[Transfer] = []      # direct first attempts with their first bytes
        self.scheduler = Scheduler()

    # -- libcurl callbacks ---------------------------------------------------

    @callback
    def _on_socket(self, what: int, fd: int, multi: Any, data: Any) -> None:
        watched = self._watched
        if what == _POLL_REMOVE:
            if fd in watched:
                watched[fd] = 0
            return
        events = _EVENTS[what & 3]
        old = watched.get(fd)
        # (no shortcut when old == events: libcurl calls only on a change, so the same
        # events mean a descriptor closed behind our back and reused, which the kernel
        # took out of the poller; modify() then fails and it is registered again)
        poller = self._poller
        try:
            if old is None:
                poller.register(fd, events)
            else:
                poller.modify(fd, events)
        except OSError:
            # closed and reused behind our back (the kernel dropped the old one)
            try:
                poller.unregister(fd)
            except OSError:
                pass
            try:
                poller.register(fd, events)
            except OSError:
                watched.pop(fd, None)
                return
        watched[fd] = events

    def stash(self, exc: BaseException) -> None:
        """Keep an exception raised inside a curl callback; it is re-raised by the loop."""
        if self._stashed is None:
            self._stashed = exc

    # -- requests ------------------------------------------------------------

    def submit(self, req: Request, blocking: bool = False) -> None:
        """Queue ``req``; a ``blocking`` call's Ctrl-C goes to its interrupt_callback."""
        req.queued(blocking)
        self.scheduler.push(req)

    def submit_all(self, reqs: list[Request]) -> None:
        """``submit`` each of ``reqs`` in turn (a batch's requests)."""
        Request.all_queued(reqs)
        self.scheduler.extend(reqs)

    def run(self, requests: Iterable[Request], until: Callable[[], bool] | None = None,
            limit: int | None = None) -> None:
        """Run until every one of ``requests`` has finished (or ``until()`` is true).

        ``limit`` caps the transfers running at once meanwhile (a batch's
        max_connections).  On any exception (KeyboardInterrupt, or one raised
        by a callback) the unfinished ones among ``requests`` are stopped,
        their temporary files removed, and the exception propagates.  Without
        ``until`` (a blocking call, a batch) SIGTERM does the same, then ends the
        process (``SignalGuard``).
        """
        if until is None:  # a blocking call or a batch (not a stream's read)
            with SignalGuard():
                self._run(list(requests), None, limit)
        else:
            self._run(list(requests), until, limit)

    def _run(self, reqs: list[Request], until: Callable[[], bool] | None, limit: int | None) -> None:
        old_limit = self.scheduler.limit
        if limit is not None:
            self.scheduler.limit = max(1, int(limit))
        try:
            while True:
                try:
                    try:
                        self._loop(reqs, until)
                        self._raise_stashed()  # (a signal that came in libcurl's last callbacks)
                        return
                    except KeyboardInterrupt as exc:
                        if not self._interrupt(reqs, exc):
                            raise
                except BaseException:
                    self.abort(reqs)
                    raise
        finally:
            self.scheduler.limit = old_limit

    def _loop(self, reqs: list[Request], until: Callable[[], bool] | None) -> None:
        first = 0  # requests before this index have finished (they mostly finish in order)
        count = len(reqs)
        while True:
            self._start_ready()
            if until is not None and until():
                return
            while first < count and reqs[first].state in FINISHED:  # (req.finished, without a call)
                first += 1
            if first == count:
                return
            self._step()

    def _interrupt(self, reqs: list[Request], exc: BaseException) -> bool:
        """Ctrl-C in a blocking call whose ``interrupt_callback`` is set: end the attempt, ask it."""
        live = [r for r in reqs if not r.finished]
        if not live or not all(r.blocking and r.opts.interrupt_callback for r in live):
            return False
        for req in live:
            transfer = self._detach(req)
            self._after(req, req.interrupted(exc, transfer))
        return True

    def _detach(self, req: Request) -> Transfer | None:
        """Take ``req`` off the loop: its transfers stopped, or out of the queue; its attempt."""
        if req.hedge is not None:
            self._release(req.hedge)
        transfer = req.transfer
        segs = req.segments
        if segs is not None:  # its segments' attempts, and any queue entry for a waiting one
            for t in segs.transfers():
                self._release(t)
            self.scheduler.remove(req)
        if transfer is not None:
            self._release(transfer)
        else:
            self.scheduler.remove(req)
        return transfer

    def abort(self, requests: Iterable[Request]) -> None:
        """Stop these requests now: running transfers removed, queued ones dropped."""
        live = [req for req in requests if not req.finished]
        self.scheduler.remove_all(live)  # (first, at once: then each _detach finds no entry)
        for req in live:
            if not req.finished:
                self._detach(req)
                req.abort()

    def resume(self, transfer: Transfer) -> None:
        """Unpause a stream transfer whose reader has made room."""
        if transfer.paused and transfer.curl in self._running:
            transfer.paused = False
            transfer.curl.pause(pycurl.PAUSE_CONT)
            self._unread = True
            self._raise_stashed()

    # -- the loop step, in phases ----------------------------------------------

    def _step(self) -> None:
        timeout = self._poll_timeout()
        events = self._poller.poll(timeout * self._poll_unit)
        self._dispatch(events, self._waiting_on_network())
        self._fire_timer()
        if not events and self._deadline is None:
            self.scheduler.poke()  # nothing happened: look at the queue again
        self._raise_stashed()
        self._drain()
        self._housekeeping()
        if self._probes:
            self._size_probes()
        if self._grow_due:
            self._grow_segments()

    def _poll_timeout(self) -> float:
        """Seconds until something is due: curl's timer, a stall check, a wake-up."""
        now = self._polled_at = time.monotonic()
        curl_ms = self.multi.timeout()
        self._deadline = None if curl_ms < 0 else now + curl_ms / 1000.0
        timeout = _WATCH_INTERVAL if self._running else _MAX_WAIT
        if self._deadline is not None:
            timeout = min(timeout, max(0.0, self._deadline - now))
        wake = self.scheduler.next_wakeup()
        if wake is not None:
            timeout = min(timeout, max(0.0, wake - now))
        if self._unread:
            return 0.0
        if not self._running and self._deadline is None and wake is None:
            if not self.scheduler.has_work():
                # nothing can ever make progress: a bug, and better said than spun on
                raise RuntimeError("urlgrabber engine: requests pending but nothing queued or running")
            self.scheduler.poke()
        return timeout

    def _waiting_on_network(self) -> bool:
        """Whether the loop waits on servers rather than on its own work: a poll
        slept for _SLEPT or more, and no longer ago than it slept (or _PROMPT_SPAN)."""
        now = time.monotonic()
        slept = now - self._polled_at
        if slept >= _SLEPT:
            self._prompt_until = now + min(slept, _PROMPT_SPAN)
        return now < self._prompt_until

    def _dispatch(self, events: list[tuple[int, int]], prompt: bool) -> None:
        """Hand each ready socket to libcurl.  When ``prompt``, a transfer that an
        event ends (libcurl's count of running transfers drops) is concluded at
        once: its connection's next request leaves before the other ready sockets
        are read, not after (bench scenario a, 10 replies arriving together: about
        0.4 ms a round).  Otherwise the drain phase concludes them all at once."""
        action = self._socket_action
        watched = self._watched
        if prompt:
            running = self._running
            for fd, mask in events:
                if not watched.get(fd):
                    self._unpark(fd)  # a parked connection closed or spoke: stop watching it
                    continue
                if action(fd, _CSELECT[mask & 31])[1] < len(running):
                    self._raise_stashed()  # (as in _step: a Ctrl-C in a callback comes first)
                    self._drain()
                    # (its callbacks may have rebuilt the engine: reset_curl_obj)
                    action, watched, running = self._socket_action, self._watched, self._running
            return
        for fd, mask in events:  # (the same loop, without a look at the count per event)
            if not watched.get(fd):
                self._unpark(fd)
                continue
            action(fd, _CSELECT[mask & 31])

    def _fire_timer(self) -> None:
        """Run curl's own timeouts when its timer is due."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._deadline = None
            self._socket_action(_SOCKET_TIMEOUT, 0)

    def _housekeeping(self) -> None:
        """Every _WATCH_INTERVAL: end stalled transfers, race slow tails on idle mirrors."""
        if not self._running:
            return
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + _WATCH_INTERVAL
        self._check_stalls(now)
        if self._segmented:
            self._grow_due = True
        sched = self.scheduler
        if not sched.has_work() and sched.has_room():
            self._consider_hedges(now)

    def _unpark(self, fd: int) -> None:
        self._watched.pop(fd, None)
        try:
            self._poller.unregister(fd)
        except OSError:
            pass

    def _raise_stashed(self) -> None:
        exc = self._stashed
        if exc is not None:
            self._stashed = None
            raise exc

    def _drain(self) -> None:
        self._unread = False
        info_read = self.multi.info_read
        ended = []
        while True:
            queued, ok, failed = info_read()
            for curl in ok:  # (a plain loop: a generator would be resumed once per transfer)
                ended.append((curl, 0, ""))
            ended.extend(failed)
            if not queued:
                break
        if ended:
            self._conclude(ended)

    def _conclude(self, ended: list[tuple[pycurl.Curl, int, str]]) -> None:
        """Finished transfers: read what curl knows and free the handles first, so the
        next transfers are on the wire while these are verified and committed."""
        settled = []
        all_ok = True
        for curl, errnum, errmsg in ended:
            transfer = self._running.get(curl)
            if transfer is None:
                continue
            if errnum in _GARBLED and transfer.reconnect(errnum):
                self._restart(transfer)  # on a new connection; the poisoned one is closed
                continue
            if transfer.binding.url[:6] == "https:":
                self._learn(transfer)
            result = transfer.outcome(errnum, errmsg)
            if transfer.req.hedge is not None and not self._settle_race(transfer, result):
                continue
            self._release(transfer)
            settled.append((transfer, result))
            all_ok = all_ok and result.ok
        # (a failure first updates its mirror's health, which the next choice needs)
        if settled and all_ok and self.scheduler.has_work():
            running = self.scheduler.running
            self._start_ready()
            if self.scheduler.running > running:  # new handles: let libcurl send their requests now
                self._deadline = None
                self._socket_action(_SOCKET_TIMEOUT, 0)
                self._unread = True
                self._raise_stashed()
        load = self.scheduler.load
        for transfer, result in settled:
            req = transfer.req
            if req.state in FINISHED:
                continue  # a split download that failed meanwhile: its other attempts are moot
            state = req.attempt_ended(transfer, result, load)
            if state is not DONE:  # (nothing to do after a success)
                self._after(req, state)

    def _learn(self, transfer: Transfer) -> None:
        """Tell the scheduler whether the key's server multiplexes, from the HTTP
        version this attempt's response came in (none: nothing learned)."""
        try:
            version = transfer.curl.getinfo(pycurl.INFO_HTTP_VERSION)
        except pycurl.error:
            return
        if version:
            binding = transfer.binding
            streams = binding.opts.max_streams if version >= _MULTIPLEXED else 1
            self.scheduler.learn(binding.key, streams)

    def _settle_race(self, transfer: Transfer, result: AttemptResult) -> bool:
        """One of two racing attempts ended; False when the other one goes on alone."""
        req = transfer.req
        if transfer is req.hedge:
            if not result.ok:  # the hedge lost: forget it, the first attempt goes on
                req.source.attempt_ended(req, transfer.binding, result, transfer, self.scheduler.load)
                self._release(transfer)
                return False
            self._release(req.transfer)  # the hedge won: the slow attempt is cancelled
            req.hedge_won(transfer)
        else:
            self._release(req.hedge)
        return True

    def _check_stalls(self, now: float) -> None:
        """End transfers that made no progress for their stall window (libcurl error 28)."""
        stalled = []
        quiet = False
        for curl, transfer in list(self._running.items()):
            window = transfer.stall_window
            if not window or transfer.paused:
                transfer.last_progress = now
                continue
            try:
                got = curl.getinfo(INFO_SIZE_DOWNLOAD)
            except pycurl.error:
                continue
            if got != transfer.last_got:
                transfer.last_got = got
                transfer.last_progress = now
            elif now - transfer.last_progress >= window:
                stalled.append((curl, transfer, window))
            elif now - transfer.last_progress >= _KICK_AFTER:
                quiet = True
        if quiet and now >= self._next_kick:
            self._next_kick = now + _KICK_AFTER
            self._kick()
        for curl, transfer, window in stalled:
            if curl in self._running:  # (not ended already, with a stalled connection)
                ended = [(curl, 28, f"No data for {window:g} seconds")]
                ended += [(mate, 28, f"No data on its connection for {window:g} seconds")
                          for mate in self._stalled_connection(curl, transfer, now, window)]
                self._conclude(ended)

    def _kick(self) -> None:
        """Let libcurl look at every socket it watches, as if each were ready: a missed
        readiness event (a poller out of step with libcurl) then costs seconds, not the
        stall window.  Nothing is ready: libcurl reads nothing and goes on waiting."""
        action, watched = self.multi.socket_action, self._watched
        for fd in list(watched):
            events = watched.get(fd)  # (as it is now: each call may change the others)
            if events:
                action(fd, _CSELECT[events & 31])
        action(pycurl.SOCKET_TIMEOUT, 0)
        self._unread = True
        self._raise_stashed()

    def _stalled_connection(self, curl: pycurl.Curl, transfer: Transfer, now: float,
                            window: float) -> list[pycurl.Curl]:
        """A stalled transfer of a multiplexing key: the other transfers on its connection,
        when none of them got data within ``window`` either (the connection is stalled).

        They all end with it (one health event: they started before it), marked so that
        libcurl closes the connection as the last one leaves; otherwise the retries would
        be put on the same silent connection.  A connection on which another stream is
        moving stays: only this stream is stuck.
        """
        key = transfer.binding.key
        if key not in self.scheduler.streams:
            return []
        if _CONN_ID is None:
            # (pycurl < 7.46 cannot say which connection a transfer is on: the key's
            # transfers stand in for the connection's, and one of them moving means
            # the connection may be alive)
            mates = []
            for other, t in self._running.items():
                if other is curl or t.binding.key != key:
                    continue
                if t.last_got and now - t.last_progress < window:
                    return []
                mates.append(t)
        else:
            try:
                conn = curl.getinfo(_CONN_ID)
            except pycurl.error:
                return []
            if conn < 0:
                return []
            mates = []
            for other, t in self._running.items():
                if other is curl:
                    continue
                try:
                    if other.getinfo(_CONN_ID) != conn:
                        continue
                except pycurl.error:
                    continue
                if t.last_got and now - t.last_progress < window:
                    return []  # the connection is alive
                mates.append(t)
        for t in (transfer, *mates):
            t.curl.setopt(pycurl.FORBID_REUSE, 1)
            t.handle.forget()  # the next configure() resets the handle, FORBID_REUSE with it
        return [t.curl for t in mates]

    def _consider_hedges(self, now: float) -> None:
        """Slow tail: nothing queued and slots free, so race slow transfers on faster mirrors."""
        sched = self.scheduler
        for transfer in list(self._running.values()):
            if not sched.has_room():
                return
            req = transfer.req
            if req.hedged or req.transfer is not transfer or req.kind != "grab" or transfer.paused:
                continue
            elapsed = now - transfer.started
            if elapsed < _HEDGE_MIN_AGE:
                continue
            try:
                got = int(transfer.curl.getinfo(INFO_SIZE_DOWNLOAD))
                length = int(transfer.curl.getinfo(INFO_CONTENT_LENGTH))
            except pycurl.error:
                continue
            if length <= 0 or got >= length:
                continue
            binding = req.source.hedge_binding(req, transfer, got / elapsed, length - got, sched.load)
            if binding is not None and sched.can_start(binding.key):
                self._launch(binding, req.start_hedge)

    def _after(self, req: Request, state: State) -> None:
        """Act on a request's new state: queue its next attempt, or run its failfunc."""
        if state is RETRY or state is FAILOVER:
            delay = req.retry_delay()
            if delay:
                self.scheduler.push_later(req, time.monotonic() + delay)
            else:
                # to the front: a started file should finish before new ones
                # begin, or its retries pile up at the end of the batch
                self.scheduler.push(req, front=True)
        elif state is SEGMENT_WAITING:
            self.scheduler.push(req, front=True)
        elif state is FAILED and req.kind != "open":
            req.run_failfunc()  # a stream's reader gets its buffered bytes first

    def _start_ready(self) -> None:
        sched = self.scheduler
        for req, binding in sched.ready():
            if not req.wants_start():
                continue  # a stale entry (a split download's segment was taken meanwhile)
            if binding.error is not None:
                self._after(req, req.skip_attempt(binding, binding.error))
                continue
            try:
                self._launch(binding, req.start_attempt)
            except URLGrabError as exc:
                self._after(req, req.skip_attempt(binding, exc))  # e.g. errno 16
            except Exception as exc:  # a value libcurl refused: this request's failure only
                err = URLGrabError(1, f"Bad request for {redact(binding.url)}: {scrub(str(exc), binding.url)}",
                                   url=binding.url, exception=exc)
                self._after(req, req.skip_attempt(binding, err))

    def _launch(self, binding: Binding, start: Callable[..., Transfer]) -> None:
        """Put an attempt on a pooled handle and into the multi; ``start`` configures it."""
        handle = self._pool.pop() if self._pool else Handle()
        streams = binding.opts.max_streams
        if streams != self._stream_cap:
            # libcurl puts at most this many transfers on one HTTP/2 connection
            self.multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, streams)
            self._stream_cap = streams
        self.scheduler.started(binding.key)
        try:
            transfer = start(handle, binding, self)
        except BaseException:
            self.scheduler.stopped(binding.key)
            handle.forget()
            self._pool.append(handle)
            raise
        self._running[handle.curl] = transfer
        self._add_handle(handle.curl)

    def watch_segments(self, req: Request) -> None:
        """``req`` is split in segments: offer it idle connections from now on."""
        self._segmented.add(req)
        self._grow_due = True

    def probe_started(self, transfer: Transfer) -> None:
        """A direct first attempt that may be split has its first bytes (called from
        its write callback): its size is read once the callbacks have returned."""
        self._probes.append(transfer)

    def _size_probes(self) -> None:
        probes, self._probes = self._probes, []
        running = self._running
        for transfer in probes:
            segs = transfer.req.segments
            # (still this attempt's handle: one ended meanwhile may already carry the next)
            if segs is not None and running.get(transfer.curl) is transfer:
                segs.sized_direct(transfer)

    def _grow_segments(self) -> None:
        """Idle connections (nothing queued, slots free): more ranged attempts for
        split downloads; a request that needs no more is forgotten."""
        self._grow_due = False
        sched = self.scheduler
        if sched.has_work():
            return  # queued requests come first
        for req in list(self._segmented):
            segs = req.segments
            if req.finished or segs is None or not segs.split:
                self._segmented.discard(req)
                continue
            free = None if sched.limit is None else sched.limit - sched.running
            if free is not None and free <= 0:
                return
            for binding, start in segs.helpers(sched.load, free):
                try:
                    self._launch(binding, start)
                except Exception:  # (a value libcurl refuses: its first attempt said so already)
                    break

    def release(self, transfer: Transfer) -> None:
        """Stop a running transfer (a split download that ended)."""
        self._release(transfer)

    def _restart(self, transfer: Transfer) -> None:
        """Run the same attempt again from the start, on the same handle."""
        curl = transfer.curl
        try:
            self.multi.remove_handle(curl)
        except pycurl.error:
            pass
        self.multi.add_handle(curl)

    def _release(self, transfer: Transfer) -> None:
        curl = transfer.curl
        if self._running.pop(curl, None) is None:
            return
        if self._segmented:
            self._grow_due = True  # a free connection for a split download
        self.scheduler.stopped(transfer.binding.key)
        try:
            self._remove_handle(curl)
        except pycurl.error:
            pass
        # no reset here: configure() reuses the settings when the next request matches
        if len(self._pool) < _POOL_MAX:
            self._pool.append(transfer.handle)
        else:
            curl.close()
        transfer.req.transfer_released(transfer)


    def close(self) -> None:
        """Close the pooled handles, the multi handle (its kept-alive connections) and
        the poller.  The engine is unusable afterwards."""
        pool, self._pool = self._pool, []
        for handle in pool:
            handle.curl.close()
        self._close_multi()

    def _close_multi(self) -> None:
        try:
            # closes the connection cache; a POLL_REMOVE libcurl reports meanwhile only
            # marks the fd parked, and the whole poller is thrown away below anyway
            self.multi.close()
        finally:
            close = getattr(self._poller, "close", None)  # epoll has one; poll does not
            if close is not None:
                close()


class _Owner:
    """The thread-local's handle on its thread's engine.

    The Engine is in a reference cycle (its multi handle holds its bound
    callbacks), so when its thread ends only the garbage collector would free
    it, and its kept-alive connections would stay open until then.  This
    holder is outside the cycle: the thread's locals are freed as the thread
    ends, and its ``__del__`` closes the engine's connections at once.
    """

    __slots__ = ("engine",)

    def __init__(self, eng: Engine) -> None:
        self.engine: Engine | None = eng

    def close(self) -> None:
        """Close the engine's connections, once (the thread ended, or the process exits)."""
        eng = self.engine
        if eng is None or eng._running:
            return  # a transfer still going (a stream handed to another thread): the gc's job
        self.engine = None
        try:
            eng.close()
        except Exception:  # interpreter shutdown, or pycurl already gone: nothing to save
            pass

    __del__ = close


_local = _thread._local()


def _close_at_exit() -> None:
    """The main thread's engine closes its connections before the interpreter tears its
    modules down: libcurl says goodbye on a connection (a TLS close) through our socket
    callback, which needs this module's names still in place."""
    owner = getattr(_local, "owner", None)
    if owner is not None:
        owner.close()
        if owner.engine is None:  # (closed: a later call, in another exit handler, makes a new one)
            _local.engine = _local.owner = None


atexit.register(_close_at_exit)


def engine() -> Engine:
    """This thread's engine (created on first use), so keep-alive spans calls."""
    eng = getattr(_local, "engine", None)
    if eng is None:
        eng = _local.engine = Engine()
        _local.owner = _Owner(eng)
    return eng


class Terminated(BaseException):
    """SIGTERM during a blocking call or ``parallel_end()``: unwinds like Ctrl-C, so
    running transfers stop and their temporary files go; then the process ends by
    SIGTERM after all (``SigtermGuard``)."""


class SignalGuard:
    """``with SignalGuard():`` -- SIGTERM inside the block acts like Ctrl-C, then kills;
    and neither signal is lost in a function that pycurl called.

    Only in the main thread, and only where the handler is the default one
    (SIG_DFL for SIGTERM, Python's default_int_handler for SIGINT): a caller's
    own handler is never replaced, and a nested guard finds ours and does
    nothing.  The block sees ``Terminated`` (``KeyboardInterrupt``) raised where
    the signal arrived, except inside a pycurl callback, which would pass it to
    pycurl to be printed and dropped: there the engine gets it and raises it as
    soon as libcurl returns (``_deliver``).  On the way out the default handlers
    are restored and a SIGTERM that came is raised again, so the process ends by
    SIGTERM (status 143, -15) with no temporary files left.  Costs a few signal
    calls per block, nothing per file.
    """

    __slots__ = ("handler", "int_handler", "fired", "leaving")

    def __enter__(self) -> SignalGuard:
        self.handler: Any = None
        self.int_handler: Any = None
        self.fired = self.leaving = False
        current = _sig.getsignal(_SIGTERM)
        try:
            if isinstance(current, int) and current == _SIG_DFL:
                handler = self._on_sigterm
                _sig.signal(_SIGTERM, handler)
                self.handler = handler
            if _sig.getsignal(_SIGINT) is _sig.default_int_handler:
                handler = self._on_sigint
                _sig.signal(_SIGINT, handler)
                self.int_handler = handler
        except (ValueError, OSError):  # not the main thread (of the main interpreter)
            pass
        return self

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.fired:
            return  # already unwinding: a second signal must not cut the clean-up short
        self.fired = True
        if not self.leaving:
            _deliver(Terminated(signum), frame)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        _deliver(KeyboardInterrupt(), frame)

    def __exit__(self, *exc: Any) -> None:
        self.leaving = True
        int_handler, self.int_handler = self.int_handler, None
        if int_handler is not None and _sig.getsignal(_SIGINT) is int_handler:
            _sig.signal(_SIGINT, _sig.default_int_handler)
        handler, self.handler = self.handler, None
        if handler is None:
            return
        if _sig.getsignal(_SIGTERM) is handler:
            _sig.signal(_SIGTERM, _SIG_DFL)
        if self.fired:
            _sig.raise_signal(_SIGTERM)  # the default action: the process ends here


def _deliver(exc: BaseException, frame: Any) -> None:
    """Raise a signal's ``exc`` here, or, in a function that pycurl called (or below
    one), hand it to this thread's engine: pycurl would print it and drop it."""
    while frame is not None:
        if frame.f_code in CALLBACKS:
            eng = getattr(_local, "engine", None)
            if eng is not None:
                eng.stash(exc)
                return
            break
        frame = frame.f_back
    raise exc


def _reset_thread_engine() -> None:
    """Classic ``reset_curl_obj``: drop this thread's pooled curl handles and kept-alive
    connections, so the next request connects (and resolves) afresh after a network change.

    With transfers running only the idle pooled handles go.  Otherwise the engine gets a
    fresh multi handle and poller in place, keeping its scheduler: a callback may call this
    while the engine's loop is on the stack, and open streams and mirrors hold the engine.
    """
    eng = getattr(_local, "engine", None)
    if eng is None:
        return
    pool, eng._pool = eng._pool, []
    for handle in pool:
        handle.curl.close()
    if eng._running:
        return
    scheduler = eng.scheduler
    try:
        eng._close_multi()
    finally:
        Engine.__init__(eng)
        eng.scheduler = scheduler
