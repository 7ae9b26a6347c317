"""A small, defensive metalink parser: which files to fetch, from where, and how to check them.

Reads metalink 4 (RFC 5854, ``urn:ietf:params:xml:ns:metalink``) and the older
metalink 3.0 (``http://www.metalinker.org/``) that Fedora's mirrormanager still
serves.  Metalinks come from the network, so the parser trusts nothing: DTDs and
entity declarations are refused before and during parsing (no billion laughs, no
external entities), the size of the document is capped, file names must be safe
relative paths, and only http, https and ftp URLs are kept.  Every problem is a
``ValueError`` whose message starts with ``metalink:``.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable

__all__ = ["MAX_DOCUMENT_BYTES", "MetalinkFile", "parse"]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Larger documents are refused: a mirror list is a few kilobytes."""

_NS4 = "urn:ietf:params:xml:ns:metalink"
_NS3 = "http://www.metalinker.org/"
_SCHEMES = frozenset({"http", "https", "ftp"})
_SHA256_TYPES = frozenset({"sha-256", "sha256"})
_MAX_NAME = 4096
_MAX_SIZE = 2**63 - 1
_XML_SPACE = " \t\r\n"
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_BAD_CHAR = re.compile(r"[\x00-\x20\x7f]")


def _markers() -> tuple[bytes, ...]:
    """``<!doctype`` and ``<!entity`` as they look in UTF-8 and in both UTF-16 byte orders."""
    out = []
    for word in ("<!doctype", "<!entity"):
        for codec in ("ascii", "utf-16-le", "utf-16-be"):
            out.append(word.encode(codec))
    return tuple(out)


_FORBIDDEN = _markers()


@dataclass(frozen=True)
class MetalinkFile:
    """One ``<file>`` of a metalink: where to save it, what it must be, where to get it."""

    name: str  # safe relative path ('/'-separated, no '..', not absolute); RFC 5854 4.1.2.1
    size: int | None
    sha256: str | None  # lowercase hex, from <hash type="sha-256"> (metalink 3: "sha256")
    urls: list[str]  # http/https/ftp only, best first


class _NoDoctype(ET.TreeBuilder):
    """A tree builder that stops the parse at a DOCTYPE, before any entity can be declared or expanded."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise ValueError("metalink: DOCTYPE declarations are not allowed")


def parse(data: bytes) -> list[MetalinkFile]:
    """Parse a metalink 4 or 3.0 document into its files, in document order.

    Raises ``ValueError`` on anything unsafe or malformed: DTD or entity
    declarations, a document over ``MAX_DOCUMENT_BYTES``, XML errors, an unknown
    root element, no files, a bad or duplicate file name, a bad size, hash or
    priority, or a file without any http/https/ftp URL.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"metalink: parse() wants bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"metalink: document too large ({len(data)} bytes, limit {MAX_DOCUMENT_BYTES})")
    if not data.strip():
        raise ValueError("metalink: empty document")
    lowered = data.lower()
    if any(marker in lowered for marker in _FORBIDDEN):
        raise ValueError("metalink: DOCTYPE and ENTITY declarations are not allowed")
    root = _parse_xml(data)
    if root.tag == f"{{{_NS4}}}metalink":
        files = [_file4(elem) for elem in root.findall(f"{{{_NS4}}}file")]
    elif root.tag == f"{{{_NS3}}}metalink":
        files = [_file3(elem) for elem in root.findall(f"{{{_NS3}}}files/{{{_NS3}}}file")]
    else:
        raise ValueError(
            f"metalink: not a metalink document (root element {root.tag[:100]!r}; "
            f"expected 'metalink' in namespace {_NS4!r} or {_NS3!r})"
        )
    if not files:
        raise ValueError("metalink: the document lists no files")
    seen: set[str] = set()
    for entry in files:
        if entry.name in seen:
            raise ValueError(f"metalink: file {entry.name!r} is listed more than once")
        seen.add(entry.name)
    return files


def _parse_xml(data: bytes) -> ET.Element:
    """Build the element tree; XML errors become ``ValueError``."""
    parser = ET.XMLParser(target=_NoDoctype())
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as exc:
        raise ValueError(f"metalink: not well-formed XML: {exc}") from None
    if not isinstance(root, ET.Element):  # pragma: no cover - TreeBuilder always returns one
        raise ValueError("metalink: no root element")
    return root


def _file4(elem: ET.Element) -> MetalinkFile:
    """A metalink 4 ``<file>``: ``<size>``, ``<hash type="sha-256">``, ``<url priority>`` children."""
    name = _safe_name(elem.get("name"))
    hashes = [h.text for h in elem.findall(f"{{{_NS4}}}hash") if _is_sha256(h)]
    urls = []
    for url in elem.findall(f"{{{_NS4}}}url"):
        priority = _number(name, "priority", url.get("priority"))
        if priority is not None and priority < 1:
            raise ValueError(f"metalink: file {name!r}: priority must be at least 1, not {priority}")
        # Priority 1 is best; URLs without one come after all ranked ones.
        key = (0, priority) if priority is not None else (1, 0)
        urls.append((key, url.text, None))
    return _make(name, elem.findall(f"{{{_NS4}}}size"), hashes, urls)


def _file3(elem: ET.Element) -> MetalinkFile:
    """A metalink 3.0 ``<file>``: ``<size>``, ``<verification><hash>``, ``<resources><url preference>``.

    Only direct children count, so mirrormanager's ``<mm0:alternates>`` (hashes
    of older repomd.xml versions) are ignored.
    """
    name = _safe_name(elem.get("name"))
    hashes = [
        h.text
        for verification in elem.findall(f"{{{_NS3}}}verification")
        for h in verification.findall(f"{{{_NS3}}}hash")
        if _is_sha256(h)
    ]
    urls = []
    for url in elem.findall(f"{{{_NS3}}}resources/{{{_NS3}}}url"):
        preference = _number(name, "preference", url.get("preference"))
        # Higher preference is better; URLs without one come after all ranked ones.
        key = (0, -preference) if preference is not None else (1, 0)
        urls.append((key, url.text, url.get("type")))
    return _make(name, elem.findall(f"{{{_NS3}}}size"), hashes, urls)


def _make(
    name: str,
    sizes: list[ET.Element],
    hashes: list[str | None],
    urls: Iterable[tuple[tuple[int, int], str | None, str | None]],
) -> MetalinkFile:
    """Check and assemble one file's fields (shared by both versions)."""
    if len(sizes) > 1:
        raise ValueError(f"metalink: file {name!r}: more than one <size>")
    size = None
    if sizes:
        size = _number(name, "size", sizes[0].text)
        if size is None:
            raise ValueError(f"metalink: file {name!r}: empty <size>")
        if size > _MAX_SIZE:
            raise ValueError(f"metalink: file {name!r}: size {size} is too large")
    digests = {_sha256(name, text) for text in hashes}
    if len(digests) > 1:
        raise ValueError(f"metalink: file {name!r}: conflicting sha-256 hashes")
    ranked = sorted(urls, key=lambda entry: entry[0])  # sorted() is stable: document order breaks ties
    usable: list[str] = []
    for _key, text, kind in ranked:
        url = _usable_url(text, kind)
        if url is not None and url not in usable:
            usable.append(url)
    if not usable:
        raise ValueError(f"metalink: file {name!r}: no usable http, https or ftp URL")
    return MetalinkFile(name=name, size=size, sha256=digests.pop() if digests else None, urls=usable)


def _safe_name(name: str | None) -> str:
    """The ``name`` attribute if it is a safe relative path, else ``ValueError``.

    RFC 5854 4.1.2.1 forbids directory traversal; we also refuse absolute paths,
    drive letters, backslashes, control characters and empty or ``.`` components,
    so that joining the name to a download directory can never leave it.
    """
    if name is None:
        raise ValueError("metalink: a <file> has no name attribute")
    if not name:
        raise ValueError("metalink: a <file> has an empty name")
    shown = repr(name[:200])
    if len(name) > _MAX_NAME:
        raise ValueError(f"metalink: file name {shown}... is too long ({len(name)} characters)")
    if _CONTROL.search(name):
        raise ValueError(f"metalink: file name {shown} contains a control character")
    if "\\" in name:
        raise ValueError(f"metalink: file name {shown} contains a backslash")
    if name.startswith("/") or _DRIVE.match(name):
        raise ValueError(f"metalink: file name {shown} is an absolute path")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"metalink: file name {shown} has an empty, '.' or '..' component")
    return name


def _number(name: str, what: str, text: str | None) -> int | None:
    """A non-negative decimal integer (surrounding XML whitespace allowed), ``None`` if absent or blank."""
    if text is None:
        return None
    text = text.strip(_XML_SPACE)
    if not text:
        return None
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"metalink: file {name!r}: bad {what} {text[:40]!r}")
    return int(text)


def _is_sha256(elem: ET.Element) -> bool:
    """Whether a ``<hash>`` element is a SHA-256 one (``sha-256`` in v4, ``sha256`` in v3)."""
    return (elem.get("type") or "").strip(_XML_SPACE).lower() in _SHA256_TYPES


def _sha256(name: str, text: str | None) -> str:
    """A SHA-256 digest as 64 lowercase hex digits, else ``ValueError``."""
    digest = (text or "").strip(_XML_SPACE)
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"metalink: file {name!r}: bad sha-256 hash {digest[:80]!r} (want 64 hex digits)")
    return digest.lower()


def _usable_url(text: str | None, kind: str | None) -> str | None:
    """The URL if it is a well-formed http, https or ftp one with a host, else ``None``."""
    url = (text or "").strip(_XML_SPACE)
    if not url or _URL_BAD_CHAR.search(url):
        return None
    if kind is not None and kind.strip(_XML_SPACE).lower() not in _SCHEMES:
        return None  # metalink 3 type="bittorrent" etc.: not a plain copy of the file
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not host:
        return None
    return url
