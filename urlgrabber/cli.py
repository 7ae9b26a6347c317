"""The ``urlgrabber`` command: download many URLs in one batch on one CurlMulti loop.

``urlgrabber [options] URL [URL ...]`` queues every URL (``async_=True``) and
runs them together with ``parallel_end()``, so the connection limits, retries,
checksums and mirror failover of the library apply unchanged.  Exit status:
0 when every file arrived, 1 when any failed, 2 on usage errors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import urlgrabber

from ._cliutil import ignore_failure, run_batch, sha256_checkfunc
from .grabber import URLGrabber, URLGrabError
from .mirror import MirrorGroup
from .progress import TextMultiFileMeter

PROG = "urlgrabber"

_EPILOG = """\
exit status: 0 all files arrived, 1 some failed, 2 usage error, 130 interrupted.

examples:
  urlgrabber -o out https://example.org/a.iso https://example.org/b.iso
  urlgrabber -i urls.txt -j 20 --per-host 6
  urlgrabber --mirror https://m1.example.org/pub --mirror https://m2.example.org/pub \\
             repodata/repomd.xml Packages/foo.rpm
  urlgrabber --demo
"""

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\] ")


@dataclass
class _Job:
    """One download of the batch: what was asked for, where it goes, its checksum."""

    source: str                  # a full URL, or a path relative to the mirrors
    dest: str                    # the output file
    sha256: str | None = None


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
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help="URLs to download (with --mirror: paths relative to the mirrors)")
    parser.add_argument("-o", "--output-dir", metavar="DIR", default=".",
                        help="directory to write into, created if missing (default: .); "
                             "each file is named after the URL's basename")
    parser.add_argument("-i", "--input-file", metavar="FILE", action="append", default=[],
                        help="read URLs from FILE, one per line ('-' = stdin; blank lines and "
                             "'#' comments are skipped); repeatable")
    parser.add_argument("-j", "--connections", metavar="N", type=_positive_int, default=10,
                        help="at most N transfers at once over the whole batch (default: 10)")
    parser.add_argument("--per-host", metavar="N", type=_positive_int, default=4,
                        help="at most N transfers at once per host or mirror (default: 4)")
    parser.add_argument("--retry", metavar="N", type=_non_negative_int, default=3,
                        help="attempts per URL or mirror for retryable errors (default: 3)")
    parser.add_argument("--timeout", metavar="SEC", type=_positive_float, default=30.0,
                        help="give up on a connection that makes no progress for SEC seconds (default: 30)")
    parser.add_argument("--mirror", metavar="BASE", action="append", default=[],
                        help="a mirror base URL (repeatable); the arguments are then paths relative "
                             "to the mirrors, each fetched from whichever mirror works")
    parser.add_argument("--sha256", metavar="PATH=HEX", type=_sha256_spec, action="append", default=[],
                        help="verify a download's sha256; PATH is the URL (or relative path) as given, "
                             "or the output file name; a mismatch is retried, then fails (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument("--demo", action="store_true",
                        help="run the built-in demo: a batch from local mirrors (see urlgrabber.demo)")
    parser.add_argument("--files", metavar="N", type=_positive_int, default=None,
                        help="with --demo: how many files the demo mirrors serve (default: 200)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {urlgrabber.__version__}")
    return parser


def read_url_list(lines: Iterable[str]) -> list[str]:
    """The URLs of an input file: stripped lines, without blank lines and ``#`` comments."""
    urls = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def output_name(source: str) -> str:
    """The file name a URL (or relative path) is saved under: its unquoted basename.

    Never empty and never ``.``/``..``, so a download cannot leave the output directory.
    """
    path = urllib.parse.urlsplit(source).path if "://" in source else source.split("?", 1)[0]
    name = os.path.basename(urllib.parse.unquote(path).rstrip("/"))
    name = name.replace("\\", "_").replace("\0", "_")
    if name in ("", ".", ".."):
        name = "index.html"
    return name


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
        if u and message.endswith(": " + u) and len(message) > len(u) + 2:
            return message[:-len(u) - 2]
    return message


def _collect_sources(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """Positional URLs then the input files' URLs, duplicates dropped (usage errors exit 2)."""
    sources = list(args.urls)
    for name in args.input_file:
        try:
            if name == "-":
                sources.extend(read_url_list(sys.stdin))
            else:
                with open(name, encoding="utf-8") as f:
                    sources.extend(read_url_list(f))
        except (OSError, UnicodeDecodeError) as e:
            parser.error(f"cannot read input file {name!r}: {e}")
    if not sources:
        parser.error("no URLs given (pass URLs as arguments or with -i FILE)")
    return list(dict.fromkeys(sources))


def _plan(sources: list[str], args: argparse.Namespace, parser: argparse.ArgumentParser
          ) -> tuple[list[_Job], list[tuple[str, str]]]:
    """Jobs for the batch, plus ``(source, message)`` for those refused before starting."""
    checksums = dict(args.sha256)
    used: set[str] = set()
    jobs: list[_Job] = []
    refused: list[tuple[str, str]] = []
    by_name: dict[str, str] = {}
    for source in sources:
        name = output_name(source)
        if name in by_name:
            refused.append((source, f"output file name {name!r} is already used by {by_name[name]}"))
            continue
        by_name[name] = source
        digest = None
        for key in (source, name):
            if key in checksums:
                digest = checksums[key]
                used.add(key)
                break
        jobs.append(_Job(source, os.path.join(args.output_dir, name), digest))
    unused = [path for path in checksums if path not in used]
    if unused:
        parser.error(f"--sha256 {unused[0]!r} matches no download")
    return jobs, refused


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Queue every job, run the batch, report failures; the exit status."""
    sources = _collect_sources(args, parser)
    jobs, failures = _plan(sources, args, parser)
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as e:
        print(f"{PROG}: cannot create output directory {args.output_dir!r}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    meter = None if args.quiet else TextMultiFileMeter(fo=sys.stderr)
    grabber = URLGrabber(retry=args.retry, timeout=args.timeout, max_connections=args.per_host,
                         copy_local=1, multi_progress_obj=meter)
    target: Any = MirrorGroup(grabber, list(args.mirror)) if args.mirror else grabber
    queued: list[_Job] = []

    def queue() -> None:
        for job in jobs:
            kwargs: dict[str, Any] = {"async_": True, "failfunc": ignore_failure}
            if job.sha256 is not None:
                kwargs["checkfunc"] = sha256_checkfunc(job.sha256)
            try:
                target.urlgrab(job.source, job.dest, **kwargs)
            except URLGrabError as e:  # refused before queueing, e.g. a malformed URL
                failures.append((job.source, describe_error(e, job.source)))
                continue
            queued.append(job)

    results = run_batch(queue, args.connections)
    for job, result in zip(queued, results):
        if not result.ok:
            failures.append((job.source, describe_error(result.exception, job.source)))
    order = {source: i for i, source in enumerate(sources)}
    failures.sort(key=lambda item: order.get(item[0], len(order)))
    for source, message in failures:
        print(f"{PROG}: {source}: {message}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: report the status, don't exit
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        if args.demo:
            if args.urls or args.input_file or args.mirror or args.sha256:
                parser.error("--demo takes no URLs, --input-file, --mirror or --sha256")
            from . import demo

            demo_argv = ["--quiet"] if args.quiet else []
            if args.files is not None:
                demo_argv += ["--files", str(args.files)]
            return demo.main(demo_argv)
        if args.files is not None:
            parser.error("--files only goes with --demo")
        return _run(args, parser)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except URLGrabError as e:
        print(f"{PROG}: {e.url or '-'}: {describe_error(e)}", file=sys.stderr)
        return 1
