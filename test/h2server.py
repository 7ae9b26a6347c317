"""An HTTPS test server that speaks HTTP/2 (and HTTP/1.1), counting connections and streams.

For the HTTP/2 tests and bench/bench_h2.py: it tells how many TCP connections
a client opened and how many requests it ran at once on each.  Built on the
``h2`` library over asyncio (a test-only dependency, in the ``test`` extras);
content comes from ``server.gen_bytes``, so files match the other servers'.

Serves ``/gen/<size>/<name>`` (GET, HEAD); ``/_stats`` (the counters as JSON)
and ``/_reset`` (zero them), whose connections are left out of the counts;
anything else is a 404.  Knobs:

* ``latency``: seconds before each response starts (a timer per request, so
  waiting requests cost nothing);
* ``h2=False``: ALPN offers only ``http/1.1``, as a server that refuses HTTP/2;
* ``max_concurrent_streams``: the SETTINGS_MAX_CONCURRENT_STREAMS it announces
  (default: h2's, unlimited);
* ``stall_after=N``: the first connection answers N requests, then goes silent
  (it reads on, sends nothing, and stays open until the client closes it);
* the body size is the path's ``<size>``.

``H2Server(cert).start()`` runs it in a daemon thread (``stop()`` ends it);
``stats()`` returns a snapshot: ``connections`` accepted, ``max_open``
connections at once, ``max_streams`` the most requests in progress at once on
one connection, ``requests``, ``protocols`` (ALPN result -> connections) and
``per_connection`` (requests, peak concurrency, whether it stalled and is closed).

Command line (the benchmark)::

    python test/h2server.py --port 0 --latency 0.04 --ca-out ca.pem [--h1-only]

writes the CA that signed its certificate to ``--ca-out``, prints ``PORT <n>``
once it listens on 127.0.0.1, and on SIGTERM prints ``STATS <json>`` on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import re
import signal
import ssl
import sys
import threading
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from server import gen_bytes

_GEN = re.compile(r"^/gen/(\d+)/([^/?#]+)")
_START_TIMEOUT = 10.0


class _Stats:
    """Counters shared by the server's connections (read from other threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.per_connection: list[dict[str, Any]] = []

    def connected(self, protocol: str) -> dict[str, Any]:
        with self.lock:
            self.connections += 1
            self.open += 1
            self.max_open = max(self.max_open, self.open)
            record = {"requests": 0, "active": 0, "max_active": 0, "closed": 0, "protocol": protocol}
            self.per_connection.append(record)
            return record

    def disconnected(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.open -= 1
            record["closed"] = 1

    def request(self, record: dict[str, Any], path: str) -> None:
        with self.lock:
            if path.startswith("/_"):
                record["control"] = 1
            record["requests"] += 1
            record["active"] += 1
            record["max_active"] = max(record["max_active"], record["active"])

    def answered(self, record: dict[str, Any]) -> None:
        with self.lock:
            record["active"] -= 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            records = [r for r in self.per_connection if not r.get("control")]
            control = len(self.per_connection) - len(records)
            protocols = collections.Counter(r["protocol"] for r in records)
            per = [{"requests": r["requests"], "max_streams": r["max_active"], "stalled": bool(r.get("stalled")),
                    "closed": bool(r["closed"])} for r in records]
            return {
                "connections": self.connections - control,
                "open": self.open,
                "max_open": self.max_open,
                "max_streams": max((r["max_streams"] for r in per), default=0),
                "requests": sum(r["requests"] for r in records),
                "protocols": dict(protocols),
                "per_connection": per,
            }


@functools.lru_cache(maxsize=4096)
def _gen(size: int, name: str) -> bytes:
    """gen_bytes, kept: a name asked for again costs nothing (a benchmark's second tool)."""
    return gen_bytes(size, name)


def _content(method: str, path: str, server: H2Server) -> tuple[int, bytes, int]:
    """(status, body, content length) for a request."""
    if path in ("/_stats", "/_reset"):
        if path == "/_reset":
            server.reset_stats()
        body = json.dumps(server.stats()).encode()
        return 200, body, len(body)
    m = _GEN.match(path)
    if m is None:
        return 404, b"not found\n", 10
    size = int(m.group(1))
    if method != "GET":
        return 200, b"", size
    return 200, (_gen(size, m.group(2)) if size <= 1 << 20 else gen_bytes(size, m.group(2))), size


class _Connection(asyncio.Protocol):
    """One TLS connection: HTTP/2 if ALPN chose it, else HTTP/1.1 with keep-alive."""

    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.transport: Any = None
        self.record: dict[str, Any] = {}
        self.h2: h2.connection.H2Connection | None = None
        self.pending: dict[int, memoryview] = {}  # stream -> body bytes not yet sent (flow control)
        self.buf = b""
        self.busy = False  # HTTP/1.1: a request is being answered
        self.closed = False
        self.silent = False  # stalled: sends nothing more

    # -- asyncio ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server._transports.add(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        proto = (ssl_object.selected_alpn_protocol() if ssl_object is not None else None) or "http/1.1"
        self.record = self.server.counters.connected(proto)
        self.stall_after = self.server.stall_after if self.server.counters.connections == 1 else None
        if proto == "h2":
            conn = self.h2 = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=False, header_encoding="latin-1"))
            conn.initiate_connection()
            if self.server.max_concurrent_streams is not None:
                conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                      self.server.max_concurrent_streams})
            self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.server._transports.discard(self.transport)
        self.server.counters.disconnected(self.record)

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            self._h2_received(data)
        else:
            self.buf += data
            self._h1_next()

    # -- HTTP/2 ----------------------------------------------------------------

    def _flush(self) -> None:
        if self.h2 is not None and not self.closed:
            out = self.h2.data_to_send()
            if out and not self.silent:
                self.transport.write(out)

    def _stalls_now(self) -> bool:
        """stall_after: this connection has answered enough; from now on it is silent."""
        if self.stall_after is not None and self.record["requests"] - self.record["active"] >= self.stall_after:
            self.silent = True
            self.record["stalled"] = 1
        return self.silent

    def _h2_received(self, data: bytes) -> None:
        conn = self.h2
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                self.server.counters.request(self.record, headers.get(":path", "/"))
                self.server._later(self._h2_respond, event.stream_id, headers.get(":method", "GET"),
                                   headers.get(":path", "/"))
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._h2_send_pending()
            elif isinstance(event, h2.events.StreamReset):
                if self.pending.pop(event.stream_id, None) is not None:
                    self.server.counters.answered(self.record)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self._flush()

    def _h2_respond(self, stream_id: int, method: str, path: str) -> None:
        if self.closed or self._stalls_now():
            return
        status, body, length = _content(method, path, self.server)
        try:
            self.h2.send_headers(stream_id, [(":status", str(status)), ("content-length", str(length)),
                                             ("content-type", "application/octet-stream")],
                                 end_stream=not body)
        except h2.exceptions.ProtocolError:  # the client reset the stream meanwhile
            self.server.counters.answered(self.record)
            return
        if body:
            self.pending[stream_id] = memoryview(body)
            self._h2_send_pending()
        else:
            self.server.counters.answered(self.record)
        self._flush()

    def _h2_send_pending(self) -> None:
        """Send what flow control allows of each unfinished body."""
        conn = self.h2
        for stream_id in list(self.pending):
            body = self.pending[stream_id]
            try:
                while body:
                    window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                    if window <= 0:
                        break
                    chunk, body = body[:window], body[window:]
                    conn.send_data(stream_id, chunk.tobytes(), end_stream=not body)
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                body = memoryview(b"")
            if body:
                self.pending[stream_id] = body
            else:
                del self.pending[stream_id]
                self.server.counters.answered(self.record)
        self._flush()

    # -- HTTP/1.1 --------------------------------------------------------------

    def _h1_next(self) -> None:
        if self.busy or self.closed:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                self.transport.close()
            return
        head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
        parts = head.split("\r\n", 1)[0].split()
        if len(parts) != 3:
            self.transport.close()
            return
        self.busy = True
        self.server.counters.request(self.record, parts[1])
        self.server._later(self._h1_respond, parts[0], parts[1])

    def _h1_respond(self, method: str, path: str) -> None:
        if self.closed or self._stalls_now():
            return
        status, body, length = _content(method, path, self.server)
        reason = "OK" if status == 200 else "Not Found"
        self.transport.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\n"
                             f"Content-Type: application/octet-stream\r\n\r\n".encode("latin-1") + body)
        self.server.counters.answered(self.record)
        self.busy = False
        self._h1_next()


class H2Server:
    """HTTPS on 127.0.0.1 with HTTP/2 (unless ``h2=False``), a latency per response,
    and counts of connections and concurrent streams (see the module docstring)."""

    def __init__(self, cert: Any, *, latency: float = 0.0, h2: bool = True,
                 max_concurrent_streams: int | None = None, stall_after: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.cert = cert  # a trustme LeafCert
        self.latency = latency
        self.h2 = h2
        self.max_concurrent_streams = max_concurrent_streams
        self.stall_after = stall_after
        self.host = host
        self.port = port
        self.counters = _Stats()
        self._transports: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL, ending in '/'."""
        return f"https://{self.host}:{self.port}/"

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["h2", "http/1.1"] if self.h2 else ["http/1.1"])
        return ctx

    def _later(self, fn: Any, *args: Any) -> None:
        if self.latency > 0:
            self._loop.call_later(self.latency, fn, *args)
        else:
            self._loop.call_soon(fn, *args)

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(lambda: _Connection(self), self.host, self.port,
                                                      ssl=self._ssl_context(), backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.abort()

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters."""
        return self.counters.snapshot()

    def reset_stats(self) -> None:
        with self.counters.lock:
            self.counters.reset()
            self.counters.open = len(self._transports)

    # -- in a thread (tests) ----------------------------------------------------

    def start(self) -> H2Server:
        """Serve from a daemon thread; returns once listening."""
        self._thread = threading.Thread(target=self._run_thread, name="h2server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("h2server did not start")
        if self._error is not None:
            raise RuntimeError(f"h2server did not start: {self._error!r}")
        return self

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._open())
        except BaseException as e:
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._close_all()
            loop.run_until_complete(asyncio.sleep(0))  # let the aborted transports finish
            loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(_START_TIMEOUT)

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line for the benchmark (see the module docstring)."""
    import trustme

    ap = argparse.ArgumentParser(description="HTTPS HTTP/2 test server with latency and connection counts")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--h1-only", action="store_true", help="offer only http/1.1 in ALPN")
    ap.add_argument("--max-concurrent-streams", type=int)
    ap.add_argument("--ca-out", required=True, help="write the CA certificate (PEM) here")
    args = ap.parse_args(argv)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(args.ca_out)
    server = H2Server(ca.issue_cert("127.0.0.1", "localhost"), latency=args.latency, h2=not args.h1_only,
                      max_concurrent_streams=args.max_concurrent_streams, port=args.port)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(server._open())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    try:
        loop.run_forever()
    finally:
        server._close_all()
        sys.stderr.write("STATS " + json.dumps(server.stats()) + "\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
