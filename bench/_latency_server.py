#!/usr/bin/env python3
"""A small, fast HTTP/1.1 test server for the benchmarks (stdlib only).

Same command line as test/server.py::

    python bench/_latency_server.py --port 0 --latency 0.04 [--bw N]
        [--error-rate P] [--truncate-rate P] [--seed S] [--refuse]
        [--corrupt-rate P] [--stall-rate P [--stall-seconds S]]

It prints one line ``PORT <n>`` once it listens on 127.0.0.1, then serves

    /gen/<size>/<name>   ``gen_bytes(size, name)``: deterministic bytes

with keep-alive, HEAD, and single byte ranges (``Range: bytes=a-b``).
``--pregen FILE`` (this server only) generates the bodies of the files listed
in FILE before it listens, so that the first tool measured does not pay for
them (generating 32 KB costs more than answering the request).  Every
request waits ``--latency`` seconds before its answer starts (a timer, not a
sleeping thread, so 100 waiting requests cost nothing).  ``--bw`` caps each
response at N bytes/s; ``--error-rate`` answers that share of requests with a
500; ``--truncate-rate`` sends the full Content-Length header but only half of
the body and then drops the connection; ``--seed`` makes those draws
repeatable; ``--refuse`` accepts connections and closes them at once.

Two more faults (off unless asked; bench/soak.py uses them):
``--corrupt-rate`` sends that share of GET bodies complete but with one byte
flipped (the Content-Length is right: only a checksum notices);
``--stall-rate`` sends the head and half of that share of GET bodies, then
nothing for ``--stall-seconds`` (default 10), then drops the connection.
Each response draws its faults in turn from the one seeded generator: 500,
then (GET) truncation, then corruption, then stall; the first drawn wins and
the later draws are skipped.  A rate that is not given draws nothing, so
without the new flags the sequence of faults is what it always was.  On
SIGTERM/SIGINT the server prints ``STATS <n> requests <n> errors <n>
truncated`` (plus `` <n> corrupted`` / `` <n> stalled`` when those rates are
set) on stderr.

It is written on asyncio.Protocol (no streams, no per-request coroutine) so
that its own cost per request stays in the tens of microseconds: the
benchmark's ideal times assume the server adds nothing to the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import random
import re
import signal
import socket
import sys

_BLOCK = 65536


def gen_bytes(size: int, name: str, start: int = 0, end: int | None = None) -> bytes:
    """Deterministic content of /gen/<size>/<name>, bytes [start, end)."""
    size = int(size)
    if end is None or end > size:
        end = size
    if start >= end:
        return b""
    out = []
    first, last = start // _BLOCK, (end - 1) // _BLOCK
    for i in range(first, last + 1):
        out.append(_block(size, name, i))
    data = b"".join(out)
    off = first * _BLOCK
    return data[start - off:end - off]


@functools.lru_cache(maxsize=8192)
def _block(size: int, name: str, i: int) -> bytes:
    n = min(_BLOCK, size - i * _BLOCK)
    return hashlib.shake_256(b"%d/%s/%d" % (size, name.encode(), i)).digest(n)


_GEN = re.compile(rb"^/gen/(\d+)/([^/?#]+)")
_RANGE = re.compile(rb"bytes=(\d*)-(\d*)$")


class Config:
    latency = 0.0
    bw = 0
    error_rate = 0.0
    truncate_rate = 0.0
    corrupt_rate = 0.0
    stall_rate = 0.0
    stall_seconds = 10.0
    refuse = False
    rng = random.Random(0)
    stats = {"requests": 0, "errors": 0, "truncated": 0, "corrupted": 0, "stalled": 0}


class HTTP(asyncio.Protocol):
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.buf = b""
        self.busy = False
        self.closed = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        if self.cfg.refuse:
            transport.abort()
            self.closed = True
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc):
        self.closed = True

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self):
        if self.closed:
            return
        idx = self.buf.find(b"\r\n\r\n")
        if idx < 0:
            if len(self.buf) > 65536:
                self.transport.abort()
            return
        head, self.buf = self.buf[:idx], self.buf[idx + 4:]
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ", 2)
        except ValueError:
            self.transport.abort()
            return
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        keep = version == b"HTTP/1.1"
        conn = headers.get(b"connection", b"").lower()
        if conn == b"close":
            keep = False
        elif conn == b"keep-alive":
            keep = True
        self.busy = True
        self.cfg.stats["requests"] += 1
        if self.cfg.latency > 0:
            asyncio.get_running_loop().call_later(
                self.cfg.latency, self._respond, method, target, headers, keep)
        else:
            self._respond(method, target, headers, keep)

    def _respond(self, method, target, headers, keep):
        if self.closed:
            return
        cfg = self.cfg
        m = _GEN.match(target)
        if m is None or method not in (b"GET", b"HEAD"):
            self._send(404, b"not found\n", keep, method)
            return
        size, name = int(m.group(1)), m.group(2).decode("latin-1")
        if cfg.error_rate and cfg.rng.random() < cfg.error_rate:
            cfg.stats["errors"] += 1
            self._send(500, b"injected error\n", keep, method)
            return
        start, end, status = 0, size, 200
        rng = headers.get(b"range")
        if rng:
            r = _RANGE.match(rng)
            if r and (r.group(1) or r.group(2)):
                if r.group(1):
                    start = int(r.group(1))
                    end = int(r.group(2)) + 1 if r.group(2) else size
                else:  # suffix range
                    start = max(0, size - int(r.group(2)))
                end = min(end, size)
                if start >= size or start >= end:
                    self._send(416, b"", keep, method,
                               extra=b"Content-Range: bytes */%d\r\n" % size)
                    return
                status = 206
        extra = b""
        if status == 206:
            extra = b"Content-Range: bytes %d-%d/%d\r\n" % (start, end - 1, size)
        truncate = bool(cfg.truncate_rate) and method == b"GET" and \
            cfg.rng.random() < cfg.truncate_rate
        if (cfg.bw and method == b"GET" and not truncate and not cfg.corrupt_rate
                and not cfg.stall_rate and end > start):
            # a paced body is made as it is sent: a large file's first byte is not
            # held back while all of it is generated
            head = self._head(status, end - start, keep, extra)
            asyncio.get_running_loop().create_task(self._paced(head, size, name, start, end, keep))
            return
        body = gen_bytes(size, name, start, end) if method == b"GET" else b""
        if not truncate and body and cfg.corrupt_rate and cfg.rng.random() < cfg.corrupt_rate:
            cfg.stats["corrupted"] += 1
            flipped = bytearray(body)
            flipped[cfg.rng.randrange(len(flipped))] ^= 0xFF
            body = bytes(flipped)
        elif not truncate and body and cfg.stall_rate and cfg.rng.random() < cfg.stall_rate:
            cfg.stats["stalled"] += 1
            head = self._head(status, end - start, keep, extra)
            self.transport.write(head + body[:len(body) // 2])
            # busy stays set: nothing more is read or answered on this connection
            asyncio.get_running_loop().call_later(cfg.stall_seconds, self._drop)
            return
        if truncate:
            cfg.stats["truncated"] += 1
            head = self._head(status, end - start, True, extra)
            self.transport.write(head + body[:len(body) // 2])
            self.transport.close()
            self.closed = True
            return
        self._send(status, body, keep, method, extra=extra, length=end - start)

    def _drop(self):
        """The end of a stall: drop the connection (if the client has not already)."""
        if not self.closed:
            self.transport.abort()
            self.closed = True

    _REASONS = {200: b"OK", 206: b"Partial Content", 404: b"Not Found",
                416: b"Range Not Satisfiable", 500: b"Internal Server Error"}

    def _head(self, status, length, keep, extra=b""):
        return (b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n"
                b"Content-Type: application/octet-stream\r\n%s"
                b"Connection: %s\r\n\r\n"
                % (status, self._REASONS.get(status, b"X"), length, extra,
                   b"keep-alive" if keep else b"close"))

    def _send(self, status, body, keep, method, extra=b"", length=None):
        if length is None:
            length = len(body)
        head = self._head(status, length, keep, extra)
        if method == b"HEAD":
            body = b""
        if self.cfg.bw and len(body) > 0:
            asyncio.get_running_loop().create_task(self._throttled(head, body, keep))
            return
        self.transport.write(head + body)
        self._done(keep)

    async def _throttled(self, head, body, keep):
        self.transport.write(head)
        chunk = max(1024, self.cfg.bw // 20)
        for i in range(0, len(body), chunk):
            if self.closed:
                return
            self.transport.write(body[i:i + chunk])
            await asyncio.sleep(len(body[i:i + chunk]) / self.cfg.bw)
        self._done(keep)

    async def _paced(self, head, size, name, start, end, keep):
        """Send bytes [start, end) of /gen/<size>/<name> at ``bw`` bytes/s: byte k
        leaves no earlier than t0 + k / bw (a schedule, so sleeps do not add up)."""
        self.transport.write(head)
        loop = asyncio.get_running_loop()
        bw = self.cfg.bw
        chunk = max(1024, bw // 20)
        t0 = loop.time()
        sent = 0
        for pos in range(start, end, chunk):
            if self.closed:
                return
            piece = gen_bytes(size, name, pos, min(end, pos + chunk))
            delay = t0 + (sent + len(piece)) / bw - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return
            self.transport.write(piece)
            sent += len(piece)
        self._done(keep)

    def _done(self, keep):
        self.busy = False
        if not keep:
            self.transport.close()
            self.closed = True
            return
        if self.buf:
            self._next()


async def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--bw", type=int, default=0)
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--truncate-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corrupt-rate", type=float, default=0.0,
                    help="share of GET bodies sent with one byte flipped")
    ap.add_argument("--stall-rate", type=float, default=0.0,
                    help="share of GET bodies that stop halfway for --stall-seconds, "
                         "then the connection is dropped")
    ap.add_argument("--stall-seconds", type=float, default=10.0)
    ap.add_argument("--refuse", action="store_true")
    ap.add_argument("--pregen", metavar="FILE",
                    help="a file of 'size name' lines: their bodies are generated before PORT is "
                         "printed, so that no client pays for it (the first tool of a run did)")
    a = ap.parse_args(argv)
    if a.pregen:
        with open(a.pregen) as f:
            for line in f:
                size, name = line.split()
                gen_bytes(int(size), name)
    cfg = Config()
    cfg.latency, cfg.bw = a.latency, a.bw
    cfg.error_rate, cfg.truncate_rate = a.error_rate, a.truncate_rate
    cfg.corrupt_rate, cfg.stall_rate = a.corrupt_rate, a.stall_rate
    cfg.stall_seconds = a.stall_seconds
    cfg.refuse, cfg.rng = a.refuse, random.Random(a.seed)
    cfg.stats = {"requests": 0, "errors": 0, "truncated": 0, "corrupted": 0, "stalled": 0}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTP(cfg), a.host, a.port,
                                      backlog=1024, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()
    line = "STATS %(requests)d requests %(errors)d errors %(truncated)d truncated" % cfg.stats
    if cfg.corrupt_rate:
        line += " %(corrupted)d corrupted" % cfg.stats
    if cfg.stall_rate:
        line += " %(stalled)d stalled" % cfg.stats
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
