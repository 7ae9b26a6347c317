"""The ``urlgrabber`` command: download many URLs in one batch on one CurlMulti loop.

``urlgrabber [options] URL [URL ...]`` queues every URL (``async_=True``) and
runs them together with ``parallel_end(raise_errors=False)``, so the connection
limits, retries, checksums and mirror failover of the library apply unchanged.
Exit status: 0 when every file arrived, 1 when any failed, 2 on usage errors,
130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP.

Retries: the library's classic ``retrycodes`` are errnos, and errno 14 covers a
503 as well as a 404, so the command passes its own list and a
``failure_callback`` that makes an attempt final unless its cause is transient
(5xx, 429, stalls and timeouts, refused or reset connections, cut bodies, a
sha256 mismatch).  The library's default ``retrycodes`` stays classic: classic
callers (yum) pass their own.
"""

from __future__ import annotations

import argparse
import json
import netrc
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import urlgrabber

from ._batch import BatchResult
from ._cliutil import (
    PROG,
    StatusDisplay,
    format_bytes,
    format_rate,
    run_batch,
    sha256_of,
)
from ._outcome import Cause, cause_of
from .errors import redact
from .grabber import URLGrabber, URLGrabError
from .mirror import MirrorGroup

_EPILOG = """\
exit status: 0 all files arrived, 1 some failed, 2 usage error, 130 interrupted,
143 terminated (SIGTERM), 129 hung up (SIGHUP).

input files (-i): one URL per line, optionally followed by out=NAME, sha256=HEX
and size=N; blank lines and '#' comments are skipped.

examples:
  urlgrabber -o out https://example.org/a.iso https://example.org/b.iso
  urlgrabber -i urls.txt -j 20 --per-host 6 --checksums SHA256SUMS
  urlgrabber -c --retry 5 https://example.org/big.iso
  urlgrabber --mirror https://m1.example.org/pub --mirror https://m2.example.org/pub \\
             -x repodata/repomd.xml Packages/foo.rpm
  urlgrabber --json -q -i urls.txt > report.json
  urlgrabber --demo
"""

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\] ")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_RATE = re.compile(r"(\d+(?:\.\d+)?)([kKmMgG]?)\Z")
_BSD_SUM = re.compile(r"SHA256 \((.+)\) = ([0-9a-fA-F]{64})\Z")

# errnos the command retries (further filtered by cause in _Run.attempt_failed)
_RETRYCODES = [-1, 2, 4, 5, 6, 7, 9, 12, 14]
# the causes worth another attempt on the same URL
_TRANSIENT = frozenset({Cause.NETWORK_CUT, Cause.RESET, Cause.STALL, Cause.UNREACHABLE,
                        Cause.BUSY, Cause.SERVER_ERROR, Cause.REJECTED, Cause.RANGE})
_SIGNALS = {getattr(signal, "SIGTERM", None): "terminated", getattr(signal, "SIGHUP", None): "hung up"}


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (transfers stopped, temporary files gone)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class _Job:
    """One download of the batch: what was asked for, where it goes, what it must be."""

    source: str                  # a full URL, or a path relative to the mirrors
    dest: str                    # the output file
    sha256: str | None = None
    size: int | None = None
    urls: list[str] | None = None  # metalink: the file's full URLs, best first
    name: str | None = None      # out=NAME, or the metalink's file name
    result: BatchResult | None = None
    error: URLGrabError | BaseException | None = None
    skipped: bool = False
    part: str | None = None      # -c: the partial file kept across runs

    @property
    def label(self) -> str:
        """The source as shown in messages (password redacted)."""
        return redact(self.source)


@dataclass
class _Line:
    """One line of an input file: the URL and its ``key=value`` settings."""

    url: str
    out: str | None = None
    sha256: str | None = None
    size: int | None = None
    where: str = ""


def _int_at_least(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value


def _sha256_spec(text: str) -> tuple[str, str]:
    """argparse type: ``PATH=HEX`` split at the last ``=`` (URLs may contain ``=``)."""
    path, sep, digest = text.rpartition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected PATH=HEX, got {text!r}")
    if not _HEX64.match(digest):
        raise argparse.ArgumentTypeError(f"not a sha256 hex digest (64 hex digits): {digest!r}")
    return path, digest.lower()


def _rate(text: str) -> float:
    """argparse type: bytes per second, with an optional k, M or G suffix (1024-based)."""
    match = _RATE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a rate (like 500k or 2M): {text!r}")
    value = float(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")
    if value < 2:
        raise argparse.ArgumentTypeError(f"too low a rate: {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    """argparse type: ``'Name: value'``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``urlgrabber`` command (also used for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Download every URL in one batch: all transfers run together on one pycurl\n"
                    "CurlMulti loop, with per-host and global connection limits, retries,\n"
                    "optional mirrors and sha256 checks.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("urls", nargs="*", metavar="URL",
        help="URLs to download (with --mirror: paths relative to the mirrors; a full URL is then "
             "fetched as it is, from its own server)")
    add("-o", "--output-dir", metavar="DIR", default=".",
        help="directory to write into, created if missing (default: .); "
             "each file is named after the URL's basename")
    add("-x", "--keep-paths", action="store_true",
        help="keep the directories: HOST/PATH for a full URL, the relative path with --mirror")
    add("-i", "--input-file", metavar="FILE", action="append", default=[],
        help="read URLs from FILE, one per line ('-' = stdin), each optionally followed by "
             "out=NAME sha256=HEX size=N; repeatable")
    add("-j", "--connections", metavar="N", type=_positive_int, default=10,
        help="at most N transfers at once over the whole batch (default: 10)")
    add("--per-host", metavar="N", type=_positive_int, default=4,
        help="at most N transfers at once per host or mirror (default: 4)")
    add("--retry", metavar="N", type=_non_negative_int, default=3,
        help="retry a transient failure (5xx, 429, timeout, refused or reset connection, cut body, "
             "sha256 mismatch) up to N times per URL or mirror, with a short backoff; "
             "a 404 is final (with --mirror the next mirror is tried) (default: 3)")
    add("--timeout", metavar="SEC", type=_positive_float, default=30.0,
        help="give up on a connection that makes no progress for SEC seconds (default: 30)")
    add("--mirror", metavar="BASE", action="append", default=[],
        help="a mirror base URL (repeatable); the arguments are then paths relative "
             "to the mirrors, each fetched from whichever mirror works")
    add("--metalink", metavar="FILE", action="append", default=[],
        help="download the files a metalink 4 document lists, from its mirrors, checking its "
             "sizes and sha256 hashes (repeatable)")
    add("--sha256", metavar="PATH=HEX", type=_sha256_spec, action="append", default=[],
        help="verify a download's sha256; PATH is the URL (or relative path) as given, "
             "or the output file name; a mismatch is retried, then fails (repeatable)")
    add("--checksums", metavar="FILE", action="append", default=[],
        help="verify downloads against a SHA256SUMS-style file (HEX  NAME lines, or BSD style); "
             "NAME is the output path under -o or the file name")
    add("-c", "--continue", dest="resume", action="store_true",
        help="resume partial downloads: each file is fetched into DEST.part, kept when a run "
             "fails or is interrupted and continued with a Range request by the next run")
    add("--no-clobber", action="store_true", help="skip a file whose destination already exists")
    add("--json", action="store_true",
        help="print one JSON document on stdout: per file url, path, size, sha256, mirror, seconds, "
             "attempts and error")
    add("--header", metavar="'NAME: VALUE'", type=_header, action="append", default=[],
        help="send an extra request header (repeatable)")
    add("--user-agent", metavar="TEXT", help="the User-Agent header to send")
    add("--ca-cert", metavar="FILE", help="verify TLS servers with the CA certificates in FILE")
    add("--insecure", action="store_true", help="do not verify TLS certificates (a warning is printed)")
    add("--proxy", metavar="URL", help="send every request through this proxy")
    add("--netrc", action="store_true", help="take user names and passwords from ~/.netrc ($NETRC)")
    add("--limit-rate", metavar="RATE", type=_rate,
        help="cap each transfer at RATE bytes/s (suffixes k, M, G)")
    add("-q", "--quiet", action="store_true", help="no progress output, only errors")
    add("-v", "--verbose", action="store_true",
        help="also say which mirror serves each file, and each retry and failover")
    add("--demo", action="store_true",
        help="run the built-in demo: a batch from local mirrors (see urlgrabber.demo)")
    add("--files", metavar="N", type=_positive_int, default=None,
        help="with --demo: how many files the demo mirrors serve (default: 200)")
    add("--version", action="version", version=f"%(prog)s {urlgrabber.__version__}")
    return parser


def read_url_list(lines: Iterable[str]) -> list[str]:
    """The URLs of an input file: the first word of each line, without blank lines and ``#`` comments."""
    return [line.url for line in _read_lines(lines, "")]


def _read_lines(lines: Iterable[str], name: str) -> list[_Line]:
    """Parse an input file: ``URL [out=NAME] [sha256=HEX] [size=N]`` per line (ValueError if bad)."""
    found = []
    for number, text in enumerate(lines, 1):
        words = text.split()
        if not words or words[0].startswith("#"):
            continue
        entry = _Line(words[0], where=f"{name}:{number}")
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if key == "out" and sep and value:
                entry.out = value
            elif key == "sha256" and sep and _HEX64.match(value):
                entry.sha256 = value.lower()
            elif key == "size" and sep and value.isdigit():
                entry.size = int(value)
            else:
                raise ValueError(f"line {number}: not out=NAME, sha256=HEX or size=N: {word!r}")
        found.append(entry)
    return found


def _safe_parts(path: str) -> list[str]:
    """The components of a path, unquoted, with no empty, ``.`` or ``..`` component and
    no separator or NUL inside one, so the result cannot leave the output directory."""
    parts = []
    for part in urllib.parse.unquote(path).replace("\\", "/").split("/"):
        part = part.replace("\0", "_")
        if part not in ("", ".", ".."):
            parts.append(part)
    return parts


def output_name(source: str, keep_paths: bool = False) -> str:
    """The path a URL (or relative path) is saved under, relative to the output directory.

    Its unquoted basename (the query string dropped), or with ``keep_paths``
    ``HOST[:PORT]/PATH`` of a full URL and the path of a relative one.  Never
    empty, never absolute, never with ``..``.  ValueError for a malformed URL.
    """
    if _SCHEME.match(source):
        split = urllib.parse.urlsplit(source)
        split.port  # noqa: B018  # ValueError for a bad port
        path = split.path
        host = split.netloc.rpartition("@")[2]
    else:
        path = source.split("?", 1)[0].split("#", 1)[0]
        host = ""
    parts = _safe_parts(path)
    last = urllib.parse.unquote(path).replace("\\", "/").rpartition("/")[2]
    if not parts or last in ("", ".", ".."):
        parts.append("index.html")
    if not keep_paths:
        return parts[-1]
    return os.path.join(*_safe_parts(host.replace(":", "_")), *parts)


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """One line for a failed download: the message without ``[Errno N]`` and the repeated URL.

    A MirrorGroup's "no more mirrors" error lists what each mirror answered.
    """
    if not isinstance(exc, URLGrabError):
        return f"{type(exc).__name__}: {exc}"
    message = _clean(exc.strerror or str(exc), (exc.url, url))
    errors = getattr(exc, "errors", None)
    if exc.errno == 256 and errors:
        attempts = "; ".join(f"{u}: {_clean(m, (u,))}" for u, m in errors)
        message = f"{message} ({attempts})"
    return message


def _clean(message: str, urls: Sequence[str | None]) -> str:
    """``message`` without an ``[Errno N]`` prefix and a trailing ``: <url>``."""
    message = _ERRNO_PREFIX.sub("", str(message))
    for u in urls:
        if u:
            u = redact(u)
            if message.endswith(": " + u) and len(message) > len(u) + 2:
                return message[:-len(u) - 2]
    return message


def _read_checksums(names: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{name: sha256}`` from SHA256SUMS-style files (``HEX  NAME``, ``HEX *NAME`` or BSD style)."""
    sums: dict[str, str] = {}
    for name in names:
        try:
            with open(name, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            parser.error(f"cannot read checksums file {name!r}: {getattr(e, 'strerror', None) or e}")
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            bsd = _BSD_SUM.match(line)
            if bsd:
                path, digest = bsd.group(1), bsd.group(2)
            else:
                digest, _, path = line.partition(" ")
                path = path.lstrip(" ").removeprefix("*")
                if not _HEX64.match(digest) or not path:
                    parser.error(f"{name}:{number}: not a sha256 line (HEX  NAME): {line[:80]!r}")
            sums[os.path.normpath(path)] = digest.lower()
    return sums


class _Run:
    """One run of the command: the plan, the batch, the report."""

    def __init__(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
        self.args = args
        self.parser = parser
        self.jobs: list[_Job] = []
        self.display: StatusDisplay | None = None
        self.by_dest: dict[str, _Job] = {}
        self.events = 0  # retries and failovers

    # -- the plan ---------------------------------------------------------------

    def plan(self) -> None:
        """Every job, from the arguments, input files and metalinks (usage errors exit 2)."""
        args, parser = self.args, self.parser
        lines = [_Line(url, where="argument") for url in args.urls]
        for name in args.input_file:
            try:
                if name == "-":
                    lines += _read_lines(sys.stdin, "stdin")
                else:
                    with open(name, encoding="utf-8") as f:
                        lines += _read_lines(f, name)
            except (OSError, UnicodeDecodeError) as e:
                parser.error(f"cannot read input file {name!r}: {getattr(e, 'strerror', None) or e}")
            except ValueError as e:
                parser.error(f"input file {name!r}: {e}")
        seen: set[str] = set()
        for line in lines:
            if line.url in seen:
                continue
            seen.add(line.url)
            self._add(line)
        for name in args.metalink:
            self._add_metalink(name)
        if not self.jobs:
            parser.error("no URLs given (pass URLs as arguments, or use -i FILE or --metalink FILE)")
        self._apply_checksums()

    def _add(self, line: _Line) -> None:
        args = self.args
        try:
            rel = _safe_parts(line.out) if line.out else None
            if line.out and not rel:
                self.parser.error(f"{line.where}: out={line.out!r} is not a file name")
            name = os.path.join(*rel) if rel else output_name(line.url, args.keep_paths)
        except ValueError as e:  # a malformed URL fails alone, before the batch
            job = _Job(line.url, "")
            job.error = URLGrabError(14, f"malformed URL: {e}", url=redact(line.url))
            self.jobs.append(job)
            return
        self._place(_Job(line.url, os.path.join(args.output_dir, name), line.sha256, line.size))

    def _add_metalink(self, name: str) -> None:
        try:
            from . import _metalink
        except ImportError:
            self.parser.error("--metalink is not available in this build")
        try:
            with open(name, "rb") as f:
                files = _metalink.parse(f.read())
        except OSError as e:
            self.parser.error(f"cannot read metalink {name!r}: {e.strerror or e}")
        except ValueError as e:
            self.parser.error(f"metalink {name!r}: {e}")
        for entry in files:
            parts = _safe_parts(entry.name)
            if not parts or not entry.urls:
                continue
            rel = os.path.join(*parts) if self.args.keep_paths else parts[-1]
            self._place(_Job(entry.name, os.path.join(self.args.output_dir, rel), entry.sha256, entry.size,
                             urls=list(entry.urls), name=entry.name))

    def _place(self, job: _Job) -> None:
        """Add ``job``; two jobs for one destination are a usage error naming both."""
        key = os.path.normpath(job.dest)
        other = self.by_dest.get(key)
        if other is not None:
            self.parser.error(
                f"{other.label} and {job.label} would both be saved as {os.path.relpath(key, self.args.output_dir)!r}; "
                f"use -x/--keep-paths, or out=NAME in an -i file")
        self.by_dest[key] = job
        self.jobs.append(job)

    def _apply_checksums(self) -> None:
        """``--sha256`` and ``--checksums``: each job's expected digest (a given one is kept)."""
        args = self.args
        checksums = dict(args.sha256)
        used: set[str] = set()
        sums = _read_checksums(args.checksums, self.parser)
        for job in self.jobs:
            if not job.dest:
                continue
            rel = os.path.normpath(os.path.relpath(job.dest, args.output_dir))
            for key in (job.source, os.path.basename(job.dest), rel):
                if key in checksums:
                    job.sha256 = checksums[key]
                    used.add(key)
                    break
            if job.sha256 is None:
                job.sha256 = sums.get(rel) or sums.get(os.path.basename(rel))
        unused = [path for path in checksums if path not in used]
        if unused:
            self.parser.error(f"--sha256 {unused[0]!r} matches no download")

    # -- the batch ----------------------------------------------------------------

    def grabber(self) -> URLGrabber:
        """The grabber every job uses: the command's retry policy and HTTP/TLS options."""
        args = self.args
        kwargs: dict[str, Any] = {
            "retry": args.retry + 1, "retrycodes": _RETRYCODES, "failure_callback": self.attempt_failed,
            "timeout": args.timeout, "max_connections": args.per_host, "copy_local": 1,
            "multi_progress_obj": self.display,
        }
        if args.user_agent is not None:
            kwargs["user_agent"] = args.user_agent
        if args.header:
            kwargs["http_headers"] = tuple(args.header)
        if args.ca_cert:
            if not os.access(args.ca_cert, os.R_OK) or os.path.isdir(args.ca_cert):
                self.parser.error(f"--ca-cert {args.ca_cert!r}: not a readable file")
            kwargs["ssl_ca_cert"] = args.ca_cert
        if args.insecure:
            kwargs["ssl_verify_peer"] = kwargs["ssl_verify_host"] = False
        if args.proxy:
            kwargs["proxies"] = {scheme: args.proxy for scheme in ("http", "https", "ftp")}
        if args.limit_rate:
            kwargs["throttle"] = args.limit_rate
        try:
            return URLGrabber(**kwargs)
        except URLGrabError as e:
            self.parser.error(describe_error(e))
            raise  # not reached: parser.error exits

    def run(self) -> int:
        """Queue every job, run the batch, report; the exit status."""
        args = self.args
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as e:
            print(f"{PROG}: cannot create output directory {args.output_dir!r}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
        if args.insecure:
            print(f"{PROG}: warning: --insecure: TLS certificates are not verified", file=sys.stderr)
        if not args.quiet:
            self.display = StatusDisplay(sys.stderr, verbose=args.verbose)
        grabber = self.grabber()
        credentials = self._netrc() if args.netrc else None
        group = self._mirror_group(grabber, args.mirror, credentials) if args.mirror else None
        started = time.monotonic()
        for job in self.jobs:
            if job.error is not None:
                self.report_failure(job)
        queued: list[_Job] = []

        def queue() -> None:
            for job in self.jobs:
                if job.error is None and self._queue(job, grabber, group, credentials):
                    queued.append(job)

        results = run_batch(queue, args.connections)
        for job, result in zip(queued, results):
            job.result = result
            if not result.ok and job.error is None:
                job.error = result.exception
                self.report_failure(job)
        seconds = time.monotonic() - started
        if args.json:
            self._print_json(seconds)
        if self.display is not None:
            self.display.numfiles = 0  # the batch is over: no status line under the summary
            self.display.line(self.summary(seconds), wrap=True)
            self.display.clear()
        return 1 if any(job.error is not None for job in self.jobs) else 0

    def _queue(self, job: _Job, grabber: URLGrabber, group: MirrorGroup | None,
               credentials: Any) -> bool:
        """Queue one job; False when it is not queued (skipped, or refused at once)."""
        args = self.args
        if args.no_clobber and os.path.lexists(job.dest):
            job.skipped = True
            if args.verbose and self.display is not None:
                self.display.line(f"{PROG}: {job.label}: skipped, {job.dest} exists")
            return False
        try:
            os.makedirs(os.path.dirname(job.dest) or ".", exist_ok=True)
        except OSError as e:
            job.error = URLGrabError(16, f"cannot create directory: {e.strerror or e}", url=job.label)
            self.report_failure(job)
            return False
        kwargs: dict[str, Any] = {"async_": True, "failfunc": self._failed(job)}
        target = job.dest
        if args.resume:
            job.part = target = job.dest + ".part"
            kwargs["reget"] = "simple"
        kwargs["checkfunc"] = self._check(job)
        if job.size is not None:
            kwargs["size"] = job.size
        if self.display is not None:
            kwargs["text"] = os.path.relpath(job.dest, args.output_dir)
        self.by_dest[os.path.normpath(target)] = job
        try:
            if job.urls:
                mirrors = self._mirror_group(grabber, job.urls, credentials, whole=True)
                mirrors.urlgrab("", target, **kwargs)
            elif group is not None and not _SCHEME.match(job.source):
                group.urlgrab(job.source, target, **kwargs)
            else:
                if credentials is not None:
                    kwargs.update(_login_for(credentials, job.source))
                grabber.urlgrab(job.source, target, **kwargs)
        except URLGrabError as e:  # refused before queueing, e.g. a malformed URL
            job.error = e
            self.report_failure(job)
            return False
        return True

    def _mirror_group(self, grabber: URLGrabber, bases: list[str], credentials: Any,
                      whole: bool = False) -> MirrorGroup:
        """A MirrorGroup of ``bases`` (``whole``: each base is the file's full URL)."""
        mirrors: list[Any] = []
        for base in bases:
            login = _login_for(credentials, base) if credentials is not None else {}
            mirrors.append({"mirror": base, "kwargs": login} if login else base)
        return (_WholeUrlGroup if whole else MirrorGroup)(grabber, mirrors)

    def _netrc(self) -> Any:
        try:
            return netrc.netrc(os.environ.get("NETRC") or None)
        except FileNotFoundError:
            return None
        except (OSError, netrc.NetrcParseError) as e:
            self.parser.error(f"cannot read netrc: {e}")

    # -- callbacks (run inside the batch) -------------------------------------------

    def _check(self, job: _Job) -> Any:
        """checkfunc: the size and sha256 a job must have; with -c, publish DEST.part as DEST."""
        def check(obj: Any) -> None:
            path = obj.filename
            try:
                actual_size = os.path.getsize(path) if job.size is not None else None
                actual = sha256_of(path) if job.sha256 is not None and actual_size == job.size else None
            except OSError as e:
                raise URLGrabError(-1, f"cannot read the download to check it: {e.strerror or e}")
            if actual_size != job.size:
                raise URLGrabError(-1, f"size mismatch: expected {job.size} bytes, got {actual_size}")
            if actual != job.sha256:
                raise URLGrabError(-1, f"sha256 mismatch: expected {job.sha256}, got {actual}")
            if job.part is not None:
                try:
                    os.replace(job.part, job.dest)
                except OSError as e:
                    raise URLGrabError(16, f"cannot rename {job.part} to {job.dest}: {e.strerror or e}")
        return check

    def _failed(self, job: _Job) -> Any:
        """failfunc: report the failure once, as soon as it is final; a rejected -c part goes."""
        def failed(obj: Any) -> None:
            job.error = obj.exception
            if job.part is not None and getattr(obj.exception, "errno", None) == -1:
                try:
                    os.unlink(job.part)  # a body that failed its check is not worth resuming
                except OSError:
                    pass
            self.report_failure(job)
        return failed

    def attempt_failed(self, obj: Any) -> None:
        """failure_callback: an attempt failed.  A cause that is not transient (a 404, a TLS or
        local error) ends the retries on that URL; the rest are retried (and said so with -v)."""
        err = obj.exception
        cause = cause_of(err)
        transient = cause in _TRANSIENT
        last = (obj.tries or 0) >= (obj.retry or 1)
        job = self.by_dest.get(os.path.normpath(obj.filename or ""))
        multi = job is not None and (job.urls or (self.args.mirror and not _SCHEME.match(job.source)))
        if (transient and not last) or multi:
            self.events += 1
            if self.args.verbose and self.display is not None:
                what = (f"retrying (attempt {obj.tries + 1} of {obj.retry})" if transient and not last
                        else "trying the next mirror")
                self.display.line(f"{PROG}: {redact(obj.url)}: {describe_error(err, obj.url)}; {what}")
        if not transient:
            raise err  # final for this URL: a MirrorGroup moves on to the next mirror

    def report_failure(self, job: _Job) -> None:
        """Print a job's failure, once."""
        message = f"{PROG}: {job.label}: {describe_error(job.error, job.source)}"
        if self.display is not None:
            self.display.line(message, wrap=True)
        else:
            print(message, file=sys.stderr, flush=True)

    # -- the report -----------------------------------------------------------------

    def summary(self, seconds: float) -> str:
        """The final line: files, bytes, time, mean rate, failures, retries and failovers."""
        ok = [j for j in self.jobs if j.result is not None and j.result.ok]
        size = sum(j.result.size for j in ok if j.result is not None)
        failed = sum(1 for j in self.jobs if j.error is not None)
        skipped = sum(1 for j in self.jobs if j.skipped)
        text = (f"total: {len(ok)} of {len(self.jobs)} files, {format_bytes(size)} in {seconds:.1f} s "
                f"({format_rate(size / seconds if seconds > 0 else None)})")
        if failed:
            text += f", {failed} failed"
        if skipped:
            text += f", {skipped} skipped"
        if self.events:
            one = self.events == 1
            text += f", {self.events} {'retry/failover' if one else 'retries/failovers'}"
        return text

    def _print_json(self, seconds: float) -> None:
        files = []
        for job in self.jobs:
            result = job.result
            entry: dict[str, Any] = {
                "url": job.label, "path": job.dest or None, "size": None, "sha256": None, "mirror": None,
                "seconds": None, "attempts": 0, "skipped": job.skipped, "error": None,
            }
            if job.urls:
                entry["urls"] = [redact(u) for u in job.urls]
            if result is not None:
                entry.update(seconds=round(result.seconds, 3), attempts=result.attempts)
                if result.ok:
                    entry.update(size=result.size, mirror=result.mirror)
                    try:
                        entry["sha256"] = job.sha256 or sha256_of(job.dest)
                    except OSError:
                        pass
            if job.error is not None:
                err = job.error
                entry["error"] = {"errno": getattr(err, "errno", None), "code": getattr(err, "code", None),
                                  "message": describe_error(err, job.source)}
            files.append(entry)
        document = {"files": files, "ok": sum(1 for f in files if f["error"] is None),
                    "failed": sum(1 for f in files if f["error"] is not None),
                    "bytes": sum(f["size"] or 0 for f in files), "seconds": round(seconds, 3),
                    "retries_and_failovers": self.events}
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
        sys.stdout.flush()


class _WholeUrlGroup(MirrorGroup):
    """A metalink file's MirrorGroup: each mirror is the file's full URL (nothing is joined)."""

    def _join_url(self, base_url: Any, rel_url: Any) -> Any:
        return base_url


def _login_for(credentials: Any, url: str) -> dict[str, str]:
    """``username``/``password`` for ``url``'s host from a netrc (none when the URL has its own)."""
    try:
        split = urllib.parse.urlsplit(url)
    except ValueError:
        return {}
    if split.username or not split.hostname:
        return {}
    found = credentials.authenticators(split.hostname)
    if not found:
        return {}
    login, _, password = found
    return {"username": login or "", "password": password or ""}


def _on_signal(signum: int, frame: Any) -> None:
    raise _Signalled(signum)


def _guard_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP unwind like Ctrl-C (main thread only); the handlers they replaced."""
    saved: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return saved
    for signum in _SIGNALS:
        if signum is not None:
            try:
                saved[signum] = signal.signal(signum, _on_signal)
            except (ValueError, OSError):
                pass
    return saved


def _restore_signals(saved: dict[int, Any]) -> None:
    for signum, handler in saved.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError, TypeError):
            pass


def _interrupted(run: _Run | None, what: str) -> None:
    """Say the run was cut short, on a line of its own (the status line erased)."""
    if run is not None and run.display is not None:
        run.display.clear()
    print(f"{PROG}: {what}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: report the status, don't exit
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    saved = _guard_signals()
    run = None
    try:
        if args.demo:
            if args.urls or args.input_file or args.mirror or args.sha256 or args.metalink:
                parser.error("--demo takes no URLs, --input-file, --mirror, --metalink or --sha256")
            from . import demo

            demo_argv = ["--quiet"] if args.quiet else []
            if args.files is not None:
                demo_argv += ["--files", str(args.files)]
            return demo.main(demo_argv)
        if args.files is not None:
            parser.error("--files only goes with --demo")
        run = _Run(args, parser)
        run.plan()
        return run.run()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        _interrupted(run, "interrupted")
        return 130
    except _Signalled as e:
        _interrupted(run, _SIGNALS.get(e.signum, "signalled"))
        return 128 + e.signum
    except URLGrabError as e:
        print(f"{PROG}: {redact(e.url) if e.url else '-'}: {describe_error(e)}", file=sys.stderr)
        return 1
    finally:
        _restore_signals(saved)
