"""Fault-injecting HTTP/1.1 test server for the urlgrabber test-suite.

Standard library only.  ``FaultServer`` runs an asyncio event loop in a
daemon thread and serves:

* files registered with :meth:`FaultServer.add_file` (GET/HEAD, ranges),
* ``/gen/<size>/<name...>``: ``gen_bytes(size, name)``, streamed (GET/HEAD, ranges),
* ``/echo/headers`` (JSON of the request headers, lower-case names),
  ``/echo/post`` (request body echoed, Content-Length or chunked),
  ``/echo/method`` (the method name),
* ``/redirect?to=<url-encoded url>&code=302``, ``/status/<code>``,
* 404 for anything else (405 for non GET/HEAD on files and /gen).

Fault knobs: a query parameter, or ``FaultServer.defaults[name]`` (the query
wins; an empty query value, e.g. ``?status=``, switches a default off):

latency=S, stall_headers=S   sleep before the response headers (both add up)
drop=1                       close the connection without answering
close=1                      answer with ``Connection: close`` and close
auth=USER:PASS               Basic auth required, else 401 + WWW-Authenticate
fail_first=N [fail_status=C] first N such requests per path fail (default 503)
status=C                     answer C with a short text body
error_rate=P truncate_rate=P stall_rate=P [seed=S]
                             one draw per request from a per-server
                             random.Random(seed): 500, or body cut at half,
                             or body stalled at half for ``stall`` seconds
                             (default 30), then cut
retry_after=S                add Retry-After to every response >= 400
Body knobs (only on 200/206 content responses: files, /gen, /echo/*):
truncate=N                   full Content-Length, N body bytes, then close
stall_at=N stall=S           pause S seconds after N body bytes
bw=BYTES_PER_SEC             pace the body
corrupt=1                    flip the byte at len(body)//2
chunked=1                    Transfer-Encoding: chunked, no Content-Length
ignore_range=1               ignore Range (200, full body)
range_shift=N                answer a Range N bytes later than asked (206, and a
                             Content-Range that says so): a mirror that misplaces
mtime=EPOCH                  Last-Modified for files and /gen

Order of evaluation: read request body, latency, stall_headers, drop, auth,
fail_first, status, error_rate/truncate_rate, then routing (404 etc.).

Command line (benchmarks)::

    python test/server.py [--port 0] [--latency 0.04] [--bw N]
        [--error-rate P] [--truncate-rate P] [--seed S] [--refuse]

prints ``PORT <n>`` once listening and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import email.utils
import hashlib
import http
import itertools
import json
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FaultServer", "gen_bytes", "gen_chunks", "DEFAULT_MTIME", "KNOBS"]

#: Last-Modified used when no mtime is given: 2020-01-01T00:00:00Z.
DEFAULT_MTIME = 1577836800.0

#: Names of the fault knobs (query parameters / ``FaultServer.defaults`` keys).
KNOBS = (
    "latency", "bw", "status", "fail_first", "fail_status", "retry_after",
    "error_rate", "truncate_rate", "stall_rate", "seed", "truncate", "drop",
    "stall_headers", "stall_at", "stall", "corrupt", "ignore_range",
    "chunked", "auth", "close", "mtime", "range_shift",
)

# ---------------------------------------------------------------------------
# deterministic content
# ---------------------------------------------------------------------------

_BLOCK = 65536
_STAMP = 16  # the first 16 bytes of every 64 KiB block depend on its index


@lru_cache(maxsize=256)
def _seed(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()


@lru_cache(maxsize=64)
def _base(name: str) -> bytes:
    return hashlib.shake_256(b"urlgrabber-gen\0" + _seed(name)).digest(_BLOCK)


@lru_cache(maxsize=64)
def _tail(name: str) -> bytes:
    return _base(name)[_STAMP:]


def _stamp(name: str, index: int) -> bytes:
    return hashlib.sha256(_seed(name) + index.to_bytes(8, "big")).digest()[:_STAMP]


def _gen_range(name: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of the infinite stream for ``name``.

    The stream is a sequence of 64 KiB blocks sharing one pseudo-random body
    but each starting with a 16-byte stamp derived from the block index, so
    an offset error of any size (including multiples of 64 KiB) is visible.
    """
    if end <= start:
        return b""
    base = _base(name)
    tail = _tail(name)
    parts = []
    pos = start
    while pos < end:
        index, off = divmod(pos, _BLOCK)
        stop = min(_BLOCK, off + (end - pos))
        if off < _STAMP:
            parts.append(_stamp(name, index)[off:min(stop, _STAMP)])
            if stop == _BLOCK:
                parts.append(tail)
            elif stop > _STAMP:
                parts.append(base[_STAMP:stop])
        else:
            parts.append(base[off:stop])
        pos += stop - off
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


def gen_bytes(size: int, name: str = "") -> bytes:
    """Deterministic pseudo-random content of ``size`` bytes for ``name``.

    ``gen_bytes(n, name)`` is a prefix of ``gen_bytes(m, name)`` for n <= m.
    """
    size = int(size)
    if size < 0:
        raise ValueError("size must be >= 0")
    return _gen_range(name, 0, size)


def gen_chunks(size: int, name: str = "", start: int = 0, chunk: int = 65536):
    """Yield ``gen_bytes(size, name)[start:]`` in pieces of at most ``chunk``
    bytes, without ever building the whole body."""
    size = int(size)
    chunk = max(1, int(chunk))
    pos = max(0, int(start))
    while pos < size:
        end = min(size, pos + chunk)
        yield _gen_range(name, pos, end)
        pos = end


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off", "none"}
_UNSATISFIABLE = "unsatisfiable"


class _BadRequest(Exception):
    pass


class _Knobs:
    """Typed read access to the merged defaults + query parameters."""

    __slots__ = ("_d",)

    def __init__(self, merged: dict):
        self._d = merged

    def raw(self, name):
        value = self._d.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    def num(self, name, default=0.0):
        value = self.raw(name)
        if value is None:
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _BadRequest(f"bad value for {name}: {value!r}") from None

    def integer(self, name, default=None):
        value = self.raw(name)
        if value is None:
            return default
        try:
            return int(float(value)) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            raise _BadRequest(f"bad value for {name}: {value!r}") from None

    def flag(self, name):
        value = self._d.get(name)
        if value is None or value is False:
            return False
        if value is True:
            return True
        if isinstance(value, (int, float)):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _BadRequest(f"bad value for {name}: {value!r}")

    def text(self, name):
        value = self.raw(name)
        return None if value is None else str(value)


class _Body:
    """A response body: in-memory bytes or a slice of a gen stream."""

    __slots__ = ("data", "gen_name", "start", "length")

    def __init__(self, data: bytes | None = None, gen_name: str | None = None,
                 start: int = 0, length: int | None = None):
        self.data = data
        self.gen_name = gen_name
        self.start = start
        self.length = len(data) if length is None else length

    def sliced(self, start: int, end: int) -> _Body:
        if self.data is not None:
            return _Body(data=self.data[start:end])
        return _Body(gen_name=self.gen_name, start=self.start + start,
                     length=end - start)

    def pieces(self, chunk: int):
        if self.data is not None:
            view = memoryview(self.data)
            for pos in range(0, self.length, chunk):
                yield view[pos:pos + chunk]
        else:
            yield from gen_chunks(self.start + self.length, self.gen_name,
                                  self.start, chunk)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _httpdate(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _fmt_num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_range(value: str, total: int):
    """Parse a single ``bytes=`` range.  Returns (first, last), None to
    ignore the header (invalid or multi-range), or _UNSATISFIABLE."""
    value = value.strip()
    if not value.lower().startswith("bytes="):
        return None
    spec = value[6:].strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        if not last:
            return None
        n = int(last)
        if n == 0 or total == 0:
            return _UNSATISFIABLE
        return max(0, total - n), total - 1
    a = int(first)
    if last:
        b = int(last)
        if b < a:
            return None
    else:
        b = total - 1
    if a >= total:
        return _UNSATISFIABLE
    return a, min(b, total - 1)


def _if_range_ok(value: str, last_modified: float) -> bool:
    value = value.strip()
    if not value or value.startswith('"') or value.startswith("W/"):
        return False  # we never send ETags, so an entity tag cannot match
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    if when is None:
        return False
    return int(last_modified) <= when.timestamp()


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, asyncio.IncompleteReadError, EOFError))


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------


class _Protocol(asyncio.StreamReaderProtocol):
    """``asyncio.start_server``'s protocol, plus transport tracking so that
    stop() can abort connections whose handler has not started yet."""

    def __init__(self, server: FaultServer, loop):
        self._fault_server = server
        self._fault_transport = None
        super().__init__(asyncio.StreamReader(limit=65536, loop=loop), server._on_connect, loop=loop)

    def connection_made(self, transport):
        server = self._fault_server
        if server._stopping:
            transport.abort()
            return
        self._fault_transport = transport
        server._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc):
        self._fault_server._transports.discard(self._fault_transport)
        super().connection_lost(exc)


class FaultServer:
    """Fault-injecting asyncio HTTP/1.1 server (see module docstring)."""

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.tls = tls
        self.host = host
        self.port = port
        self.defaults: dict = {}
        self.refuse = False
        self.down_until = 0.0  # go_down(): connections are dropped until then
        self.errors: list[str] = []  # unexpected exceptions inside handlers
        self._files: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._conn_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self._conns: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._transports: set = set()
        self._stopping = False
        self.inflight = 0
        self._init_stats()

    # -- stats ---------------------------------------------------------------

    def _init_stats(self):
        self.connections = 0
        self.requests = 0
        self.peak_inflight = self.inflight
        self.bytes_sent = 0
        self.by_path: collections.Counter = collections.Counter()
        self.log: list[dict] = []
        self._fail_seen: collections.Counter = collections.Counter()
        self._rngs: dict = {}

    def reset_stats(self) -> None:
        """Zero the counters, clear ``log``/``by_path`` (in place), and also
        restart the fail_first counts and the seeded random streams."""
        with self._lock:
            self.connections = 0
            self.requests = 0
            self.peak_inflight = self.inflight
            self.bytes_sent = 0
            self.by_path.clear()
            self.log.clear()
            self._fail_seen.clear()
            self._rngs.clear()

    # -- public API ------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def add_file(self, path: str, data: bytes, mtime: float | None = None) -> str:
        if not path.startswith("/"):
            path = "/" + path
        self._files[path] = (bytes(data), DEFAULT_MTIME if mtime is None else float(mtime))
        return self.url + path

    def start(self) -> FaultServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,),
                                        name="FaultServer", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FaultServer did not start within 10s")
        if self._start_error is not None:
            self._thread = None
            raise self._start_error
        return self

    def stop(self) -> None:
        loop, event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self, on_ready=None) -> None:
        """Run in the calling (main) thread until SIGINT/SIGTERM."""

        async def main():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._request_stop)
                except (NotImplementedError, RuntimeError):
                    pass
            await self._main(on_ready or (lambda: None))

        asyncio.run(main())

    # -- loop plumbing -----------------------------------------------------------

    def _thread_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready.set))
        except BaseException as exc:
            self._start_error = exc
        finally:
            ready.set()

    def _request_stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    def _loop_exception(self, loop, context) -> None:
        exc = context.get("exception")
        if exc is not None and _is_disconnect(exc):
            return
        message = str(context.get("message", ""))
        if "SSL" in message or "connection" in message.lower():
            return
        loop.default_exception_handler(context)

    async def _main(self, on_ready) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        loop.set_exception_handler(self._loop_exception)
        self._stop_event = asyncio.Event()
        kwargs = {}
        if self.tls is not None:
            kwargs.update(ssl=self.tls, ssl_handshake_timeout=10.0)
            if sys.version_info >= (3, 11):
                kwargs["ssl_shutdown_timeout"] = 2.0
        self._stopping = False
        srv = await loop.create_server(lambda: _Protocol(self, loop), self.host, self.port,
                                       backlog=1024, reuse_address=True, **kwargs)
        self.port = srv.sockets[0].getsockname()[1]
        try:
            on_ready()
            await self._stop_event.wait()
        finally:
            self._stopping = True
            srv.close()
            for transport in list(self._transports):
                transport.abort()
            tasks = list(self._conns)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            for _ in range(3):  # let pending connection_made callbacks see _stopping
                await asyncio.sleep(0)

    # -- connection handling ---------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        cid = next(self._conn_ids)
        if self.refuse or time.monotonic() < self.down_until:
            sock = writer.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            except (OSError, AttributeError):
                pass
            writer.transport.abort()
            return
        task = asyncio.current_task()
        self._conns[task] = writer
        try:
            await self._serve_connection(reader, writer, cid)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            if not _is_disconnect(exc):
                self._report(exc)
        finally:
            self._conns.pop(task, None)
            try:
                writer.close()
            except Exception:
                pass

    def go_down(self, seconds: float) -> None:
        """Be unreachable for ``seconds``: open connections are reset, new ones too."""
        self.down_until = time.monotonic() + seconds
        loop = self._loop
        if loop is not None:
            done = threading.Event()

            def reset_all():
                for transport in list(self._transports):
                    transport.abort()
                done.set()

            loop.call_soon_threadsafe(reset_all)
            done.wait(5)

    def _report(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(text)
        sys.stderr.write(f"FaultServer: unexpected error\n{text}")

    async def _serve_connection(self, reader, writer, cid) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            head = head.lstrip(b"\r\n")
            if not head:
                continue
            if not await self._handle(reader, writer, head, cid):
                return

    async def _handle(self, reader, writer, head: bytes, cid: int) -> bool:
        """Answer one request; return True to keep the connection open."""
        lines = head.decode("latin-1").split("\n")
        parts = lines[0].strip().split()
        headers: dict[str, str] = {}
        for line in lines[1:]:
            line = line.rstrip("\r")
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return False
        method, target, version = parts
        if target.startswith("/"):
            raw_path, _, qs = target.partition("?")
        elif "://" in target:  # absolute-form (the client uses us as a proxy)
            split = urlsplit(target)
            raw_path, qs = split.path or "/", split.query
        else:
            raw_path, qs = target, ""
        path = unquote(raw_path)
        query = dict(parse_qsl(qs, keep_blank_values=True))
        entry = {
            "method": method, "path": path, "query": query, "headers": headers,
            "range": headers.get("range"), "status": None, "body_bytes": 0,
            # extras
            "target": target, "version": version, "conn": cid, "fault": None,
            "request_body_bytes": 0, "at": time.monotonic(),
        }
        with self._lock:
            self.requests += 1
            self.by_path[path] += 1
            self.log.append(entry)
            self.inflight += 1
            if self.inflight > self.peak_inflight:
                self.peak_inflight = self.inflight
        try:
            return await self._respond_to(reader, writer, entry, method, path,
                                          query, headers, version)
        except _BadRequest as exc:
            await self._send(writer, entry, method, 400, [], _Body(str(exc).encode() + b"\n"),
                             keep=False, knobs=None)
            return False
        finally:
            with self._lock:
                self.inflight -= 1

    async def _read_request_body(self, reader, writer, headers) -> bytes:
        te = headers.get("transfer-encoding", "").lower()
        chunked = "chunked" in te
        length = None
        if not chunked and "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _BadRequest("bad Content-Length") from None
            if length < 0:
                raise _BadRequest("bad Content-Length")
        if (chunked or length) and "100-continue" in headers.get("expect", "").lower():
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if length:
            return await reader.readexactly(length)
        if not chunked:
            return b""
        parts = []
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while True:  # trailers
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _respond_to(self, reader, writer, entry, method, path, query,
                          headers, version) -> bool:
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        if version == "HTTP/1.0":
            keep = "keep-alive" in tokens
        else:
            keep = "close" not in tokens
        body_in = await self._read_request_body(reader, writer, headers)
        entry["request_body_bytes"] = len(body_in)

        knobs = _Knobs({**self.defaults, **query})
        latency = knobs.num("latency")
        if latency > 0:
            await asyncio.sleep(latency)
        stall_headers = knobs.num("stall_headers")
        if stall_headers > 0:
            await asyncio.sleep(stall_headers)
        if knobs.flag("drop"):
            entry["fault"] = "drop"
            return False
        if knobs.flag("close"):
            keep = False

        def simple(status, text=None, fault=None, extra=()):
            entry["fault"] = fault
            body = (text if text is not None else f"{status} {_reason(status)}\n").encode()
            return self._send(writer, entry, method, status,
                              [("Content-Type", "text/plain"), *extra],
                              _Body(body), keep, knobs)

        auth = knobs.text("auth")
        if auth is not None and not self._auth_ok(headers.get("authorization"), auth):
            return await simple(401, "authentication required\n", "auth",
                                [("WWW-Authenticate", 'Basic realm="test"')])

        fail_first = knobs.integer("fail_first", 0)
        if fail_first > 0:
            with self._lock:
                self._fail_seen[path] += 1
                seen = self._fail_seen[path]
            if seen <= fail_first:
                return await simple(knobs.integer("fail_status", 503), fault="fail_first")

        status = knobs.integer("status")
        if status is not None:
            return await simple(status, fault="status")

        truncate_half = False
        error_rate = knobs.num("error_rate")
        truncate_rate = knobs.num("truncate_rate")
        stall_rate = knobs.num("stall_rate")
        if error_rate > 0 or truncate_rate > 0 or stall_rate > 0:
            seed = knobs.integer("seed")  # one stream per seed value, per server
            with self._lock:
                rng = self._rngs.get(seed)
                if rng is None:
                    rng = self._rngs[seed] = random.Random(seed)
                draw = rng.random()
            if draw < error_rate:
                return await simple(500, fault="error_rate")
            if draw < error_rate + truncate_rate:
                truncate_half = True
            elif draw < error_rate + truncate_rate + stall_rate:
                truncate_half = "stall"  # a stall at half, then the cut

        # -- routing ----------------------------------------------------------
        hdrs: list = []
        if path in self._files:
            data, mtime = self._files[path]
            return await self._resource(writer, entry, method, headers, knobs, keep,
                                        _Body(data), mtime, truncate_half)
        if path.startswith("/gen/"):
            size_text, _, name = path[5:].partition("/")
            if size_text.isdigit():
                return await self._resource(
                    writer, entry, method, headers, knobs, keep,
                    _Body(gen_name=name, start=0, length=int(size_text)),
                    DEFAULT_MTIME, truncate_half)
            return await simple(404)
        if path == "/echo/headers":
            body = json.dumps(headers, sort_keys=True).encode()
            hdrs.append(("Content-Type", "application/json"))
            return await self._send(writer, entry, method, 200, hdrs, _Body(body),
                                    keep, knobs, content=True, truncate_half=truncate_half)
        if path == "/echo/post":
            hdrs.append(("Content-Type", "application/octet-stream"))
            return await self._send(writer, entry, method, 200, hdrs, _Body(body_in),
                                    keep, knobs, content=True, truncate_half=truncate_half)
        if path == "/echo/method":
            hdrs.append(("Content-Type", "text/plain"))
            return await self._send(writer, entry, method, 200, hdrs,
                                    _Body(method.encode()), keep, knobs, content=True,
                                    truncate_half=truncate_half)
        if path == "/redirect":
            to = query.get("to")
            if not to:
                return await simple(400, "missing to=\n")
            try:
                code = int(query.get("code", "302"))
            except ValueError:
                return await simple(400, "bad code=\n")
            return await simple(code, f"redirecting to {to}\n", extra=[("Location", to)])
        if path.startswith("/status/"):
            try:
                code = int(path[8:].strip("/"))
            except ValueError:
                return await simple(404)
            return await simple(code)
        return await simple(404)

    @staticmethod
    def _auth_ok(header: str | None, expected: str) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        return decoded == expected

    async def _resource(self, writer, entry, method, headers, knobs, keep, body,
                        mtime, truncate_half) -> bool:
        last_modified = knobs.num("mtime", mtime)
        hdrs = [("Content-Type", "application/octet-stream"),
                ("Last-Modified", _httpdate(last_modified)),
                ("Accept-Ranges", "bytes")]
        if method not in ("GET", "HEAD"):
            entry["fault"] = None
            return await self._send(writer, entry, method, 405,
                                    [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")],
                                    _Body(b"405 Method Not Allowed\n"), keep, knobs)
        total = body.length
        range_header = headers.get("range")
        if range_header and not knobs.flag("ignore_range"):
            honour = True
            if "if-range" in headers:
                honour = _if_range_ok(headers["if-range"], last_modified)
            if honour:
                parsed = _parse_range(range_header, total)
                if parsed == _UNSATISFIABLE:
                    hdrs = [("Content-Type", "text/plain"),
                            ("Content-Range", f"bytes */{total}"),
                            ("Last-Modified", _httpdate(last_modified))]
                    return await self._send(writer, entry, method, 416, hdrs,
                                            _Body(b"416 Range Not Satisfiable\n"),
                                            keep, knobs)
                if parsed is not None:
                    first, last = parsed
                    shift = knobs.integer("range_shift", 0)
                    if shift:  # a broken server: another range than asked, honestly labelled
                        first, last = min(first + shift, total - 1), min(last + shift, total - 1)
                        entry["fault"] = "range_shift"
                    hdrs.append(("Content-Range", f"bytes {first}-{last}/{total}"))
                    return await self._send(writer, entry, method, 206, hdrs,
                                            body.sliced(first, last + 1), keep, knobs,
                                            content=True, truncate_half=truncate_half)
        return await self._send(writer, entry, method, 200, hdrs, body, keep, knobs,
                                content=True, truncate_half=truncate_half)

    async def _send(self, writer, entry, method, status, headers, body: _Body, keep,
                    knobs: _Knobs | None, content=False, truncate_half=False) -> bool:
        """Write one response.  ``content`` enables the body faults."""
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = body.length
        hdrs = list(headers)
        if knobs is not None and status >= 400:
            retry_after = knobs.raw("retry_after")
            if retry_after is not None:
                hdrs.append(("Retry-After", _fmt_num(float(retry_after))))

        chunked = False
        limit = corrupt_at = stall_at = None
        stall = bw = 0.0
        if content and knobs is not None:
            chunked = knobs.flag("chunked") and entry["version"] != "HTTP/1.0"
            limit = knobs.integer("truncate")
            if truncate_half is True and not no_body:
                limit = length // 2 if limit is None else min(limit, length // 2)
                entry["fault"] = "truncate_rate"
            if limit is not None and not no_body:
                limit = max(0, min(limit, length))
                keep = False
                entry["fault"] = entry["fault"] or "truncate"
            if knobs.flag("corrupt") and length > 0:
                corrupt_at = length // 2
                entry["fault"] = entry["fault"] or "corrupt"
            stall_at = knobs.integer("stall_at")
            stall = knobs.num("stall")
            if truncate_half == "stall" and not no_body:
                stall_at, stall, keep = length // 2, stall or 30.0, False
                entry["fault"] = "stall_rate"
            if stall_at is None or stall <= 0:
                stall_at = None
            bw = knobs.num("bw")

        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
        elif status not in (204, 304) and not 100 <= status < 200:
            hdrs.append(("Content-Length", str(length)))
        if not keep:
            hdrs.append(("Connection", "close"))
        head = "".join([f"HTTP/1.1 {status} {_reason(status)}\r\n",
                        *(f"{k}: {v}\r\n" for k, v in hdrs), "\r\n"]).encode("latin-1")
        entry["status"] = status
        transport = writer.transport

        if no_body:
            writer.write(head)
            await writer.drain()
            return keep

        simple = (limit is None and corrupt_at is None and stall_at is None and bw <= 0
                  and not chunked and body.data is not None and length <= 262144)
        if simple:
            entry["body_bytes"] = length
            with self._lock:
                self.bytes_sent += length
            writer.write(head + body.data if length else head)
            await writer.drain()
            return keep

        writer.write(head)
        await writer.drain()
        loop = asyncio.get_running_loop()
        piece_size = max(1, min(16384, int(bw / 10))) if bw > 0 else 65536
        sent = 0
        t0 = loop.time()
        end = length if limit is None else limit
        pieces = body.pieces(piece_size)
        pending = b""
        while sent < end:
            if stall_at is not None and sent >= stall_at:
                await asyncio.sleep(stall)
                t0 += stall
                stall_at = None
            if not pending:
                pending = next(pieces, b"")
                if not pending:
                    break
            n = min(len(pending), end - sent)
            if stall_at is not None and sent < stall_at < sent + n:
                n = stall_at - sent
            piece, pending = pending[:n], pending[n:]
            if corrupt_at is not None and sent <= corrupt_at < sent + n:
                piece = bytearray(piece)
                piece[corrupt_at - sent] ^= 0xFF
            if bw > 0:  # pace so that byte k leaves no earlier than t0 + k/bw
                delay = t0 + (sent + n) / bw - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if transport.is_closing():
                raise ConnectionResetError("client went away")
            sent += n
            entry["body_bytes"] = sent  # counted before the write: never behind the client
            with self._lock:
                self.bytes_sent += n
            writer.write(b"%x\r\n%b\r\n" % (n, piece) if chunked else piece)
            await writer.drain()
            # drain() does not yield unless the buffer is full: yield anyway, for
            # fairness and so that a lost TLS connection gets noticed at once
            await asyncio.sleep(0)
        if stall_at is not None and sent >= stall_at and limit is None:
            await asyncio.sleep(stall)
        if limit is not None:
            await writer.drain()
            return False
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return keep


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="FaultServer for benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float)
    parser.add_argument("--bw", type=float)
    parser.add_argument("--error-rate", type=float)
    parser.add_argument("--truncate-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--refuse", action="store_true")
    args = parser.parse_args(argv)
    server = FaultServer(host=args.host, port=args.port)
    for name in ("latency", "bw", "error_rate", "truncate_rate", "seed"):
        value = getattr(args, name)
        if value is not None:
            server.defaults[name] = value
    server.refuse = args.refuse

    def ready():
        sys.stdout.write(f"PORT {server.port}\n")
        sys.stdout.flush()

    server.serve_forever(ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
