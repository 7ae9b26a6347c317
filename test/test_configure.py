"""Unit tests of _curl.configure: which curl settings each option becomes.

The handle is a recorder of setopt calls (not a network mock: nothing is
fetched); the end-to-end behaviour of each option is tested elsewhere
against real servers.
"""

from __future__ import annotations

import pycurl
import pytest

from urlgrabber import _curl, _sinks
from urlgrabber.grabber import URLGrabberOptions


class RecordingCurl:
    def __init__(self):
        self.opts = {}
        self.calls = []
        self.resets = 0

    def setopt(self, option, value):
        self.opts[option] = value
        self.calls.append(option)

    def unsetopt(self, option):
        self.opts.pop(option, None)
        self.calls.append(option)

    def reset(self):
        self.opts.clear()
        self.resets += 1


class RecordingHandle:
    def __init__(self):
        self.curl = RecordingCurl()
        self.plan = None
        self.plan_key = None
        self.partial = False
        self.header_cb = False
        self.max_size = 0
        self.writer = _sinks.DirectWriter()
        self.wired = False

    blank = _curl.Handle.blank  # (what configure's reset clears: the real Handle's own)

    @property
    def setopt(self):  # (the real Handle keeps its curl's setopt and getinfo: the current curl's here)
        return self.curl.setopt


def configured(url="http://example.org/f", **opts):
    handle = RecordingHandle()
    _curl.configure(handle, URLGrabberOptions(**opts), url)
    return handle.curl.opts


def headers(opts):
    return opts.get(pycurl.HTTPHEADER, [])


def test_secure_defaults():
    opts = configured("https://example.org/f")
    assert opts[pycurl.SSL_VERIFYPEER] == 1
    assert opts[pycurl.SSL_VERIFYHOST] == 2
    assert opts[pycurl.PROTOCOLS] & pycurl.PROTO_FILE
    assert not opts[pycurl.REDIR_PROTOCOLS] & pycurl.PROTO_FILE  # a redirect never reads a local file
    assert opts[pycurl.MAXREDIRS] == 5
    assert opts[pycurl.NOSIGNAL] == 1
    assert opts[pycurl.PIPEWAIT] == 1


def test_tls_options():
    opts = configured("https://example.org/f", ssl_verify_peer=False, ssl_verify_host=False,
                      ssl_ca_cert="/ca.pem", ssl_cert="/c.pem", ssl_key="/k.pem", ssl_key_pass="pw")
    assert opts[pycurl.SSL_VERIFYPEER] == 0
    assert opts[pycurl.SSL_VERIFYHOST] == 0
    assert opts[pycurl.CAINFO] == "/ca.pem"
    assert opts[pycurl.SSLCERT] == "/c.pem"
    assert opts[pycurl.SSLKEY] == "/k.pem"
    assert opts[pycurl.KEYPASSWD] == "pw"


def test_plain_http_does_not_wait_for_multiplexing():
    assert pycurl.PIPEWAIT not in configured("http://example.org/f")


def test_timeout_is_the_connect_timeout_and_minrate_the_low_speed_limit():
    opts = configured(timeout=2.5, minrate=1000)
    assert opts[pycurl.CONNECTTIMEOUT_MS] == 2500
    assert opts[pycurl.LOW_SPEED_LIMIT] == 1000
    assert opts[pycurl.LOW_SPEED_TIME] == 2  # round(2.5)
    assert pycurl.LOW_SPEED_LIMIT not in configured(timeout=2.5)


@pytest.mark.parametrize(("throttle", "bandwidth", "rate"), [
    (1.0, 0, None), (0.5, 100000, 50000), (2048, 0, 2048), (0, 100000, None)])
def test_throttle_and_bandwidth(throttle, bandwidth, rate):
    opts = configured(throttle=throttle, bandwidth=bandwidth)
    assert opts.get(pycurl.MAX_RECV_SPEED_LARGE) == rate
    # libcurl 7.88 checks the rate after up to 100 reads of a buffer each: a
    # throttled transfer reads a hundredth of the rate at a time (1-16 KB)
    assert opts[pycurl.BUFFERSIZE] == {None: 131072, 50000: 1024, 2048: 1024}[rate]
    assert configured(throttle=1_000_000)[pycurl.BUFFERSIZE] == 10000
    assert configured(throttle=10_000_000)[pycurl.BUFFERSIZE] == 16384


class RefusingCurl(RecordingCurl):
    """libcurl 7.88 refuses BUFFERSIZE (error 43) on a handle that keeps its last
    transfer's buffer (after some errors, or a stream that ended on an HTTP/2
    connection still carrying others)."""

    closed = False

    def setopt(self, option, value):
        if option == pycurl.BUFFERSIZE:
            raise pycurl.error(43, "")
        super().setopt(option, value)

    def close(self):
        self.closed = True


class RenewableHandle(RecordingHandle):
    def renew(self):
        self.curl = RecordingCurl()
        self.plan = self.plan_key = None
        return self.curl


def test_a_handle_that_refuses_a_buffer_size_is_renewed():
    handle = RenewableHandle()
    refusing = handle.curl = RefusingCurl()
    _curl.configure(handle, URLGrabberOptions(throttle=2048), "https://example.org/f")
    assert handle.curl is not refusing
    opts = handle.curl.opts
    assert opts[pycurl.BUFFERSIZE] == 1024
    assert opts[pycurl.URL] == "https://example.org/f"
    assert opts[pycurl.MAX_RECV_SPEED_LARGE] == 2048
    assert opts[pycurl.SSL_VERIFYPEER] == 1


def test_handle_renew_replaces_the_curl_object():
    handle = _curl.Handle()
    old = handle.curl
    handle.plan, handle.plan_key, handle.partial, handle.header_cb = "p", "k", True, True
    new = handle.renew()
    assert new is handle.curl and new is not old
    assert (handle.plan, handle.plan_key, handle.partial, handle.header_cb) == (None, None, False, False)
    with pytest.raises(pycurl.error):
        old.setopt(pycurl.URL, "http://example.org/")  # closed
    # the methods it keeps (configure and outcome call them) are the new object's
    handle.setopt(pycurl.URL, "http://example.org/")
    assert handle.getinfo(pycurl.EFFECTIVE_URL) == "http://example.org/"
    assert handle.setopt.__self__ is new and handle.getinfo.__self__ is new


def test_headers_user_agent_and_no_cache():
    opts = configured(user_agent="ua/1", http_headers=(("X-A", "1"),), no_cache=True)
    assert opts[pycurl.USERAGENT] == "ua/1"
    assert headers(opts) == ["X-A: 1", "Pragma:no-cache", "Cache-Control: no-cache"]


def test_keepalive_off_forbids_reuse():
    assert configured(keepalive=0)[pycurl.FORBID_REUSE] == 1
    assert configured(close_connection=1)[pycurl.FORBID_REUSE] == 1
    assert pycurl.FORBID_REUSE not in configured()


def test_proxies():
    opts = configured(proxies={"http": "http://proxy:3128"})
    assert opts[pycurl.PROXY] == "http://proxy:3128"
    opts = configured(proxies={"http": "_none_"})
    assert opts[pycurl.PROXY] == ""
    assert opts[pycurl.NOPROXY] == "*"
    assert pycurl.PROXY not in configured()  # libcurl reads the environment itself


def test_credentials_post_and_size():
    opts = configured(username="u", password="p", data={"a": "1 2"}, size=1000)
    assert opts[pycurl.USERNAME] == "u"
    assert opts[pycurl.PASSWORD] == "p"
    assert opts[pycurl.POST] == 1
    assert opts[pycurl.POSTFIELDS] == b"a=1+2"
    assert opts[pycurl.MAXFILESIZE_LARGE] == 1000


def test_filetime_for_http_and_when_asked():
    assert configured()[pycurl.OPT_FILETIME] == 1
    assert pycurl.OPT_FILETIME not in configured("ftp://example.org/f")
    handle = RecordingHandle()
    _curl.configure(handle, URLGrabberOptions(), "ftp://example.org/f", filetime=True)
    assert handle.curl.opts[pycurl.OPT_FILETIME] == 1


def test_ranges_and_resume():
    handle = RecordingHandle()
    opts = URLGrabberOptions()
    _curl.configure(handle, opts, "http://example.org/f", offset=100)
    assert handle.curl.opts[pycurl.RANGE] == "100-"
    _curl.configure(handle, opts, "http://example.org/f", byte_range=(10, 20))
    assert handle.curl.opts[pycurl.RANGE] == "10-19"
    _curl.configure(handle, opts, "http://example.org/f", byte_range=(10, None))
    assert handle.curl.opts[pycurl.RANGE] == "10-"
    _curl.configure(handle, opts, "http://example.org/f")
    assert handle.curl.opts[pycurl.RANGE] is None


def test_a_pooled_handle_keeps_its_settings_when_the_options_match():
    handle = RecordingHandle()
    opts = URLGrabberOptions(timeout=5)
    _curl.configure(handle, opts, "http://example.org/a")
    assert handle.curl.resets == 1
    handle.curl.calls.clear()
    _curl.configure(handle, opts.derive(), "http://example.org/b")
    assert handle.curl.resets == 1
    assert handle.curl.calls == [pycurl.URL]
    _curl.configure(handle, opts.derive(timeout=6), "http://example.org/c")
    assert handle.curl.resets == 2
    assert handle.curl.opts[pycurl.CONNECTTIMEOUT_MS] == 6000


def test_calls_that_differ_only_in_size_keep_the_settings():
    """yum gives every package's size: the size is set per request, like the URL."""
    handle = RecordingHandle()
    base = URLGrabberOptions(timeout=5)
    _curl.configure(handle, base.derive(size=1000), "http://example.org/a")
    assert handle.curl.opts[pycurl.MAXFILESIZE_LARGE] == 1000 and handle.curl.resets == 1
    handle.curl.calls.clear()
    _curl.configure(handle, base.derive(size=2000), "http://example.org/b")
    assert handle.curl.calls == [pycurl.URL, pycurl.MAXFILESIZE_LARGE] and handle.curl.resets == 1
    assert handle.curl.opts[pycurl.MAXFILESIZE_LARGE] == 2000
    handle.curl.calls.clear()
    _curl.configure(handle, base.derive(), "http://example.org/c")  # no size: no limit
    assert handle.curl.calls == [pycurl.URL, pycurl.MAXFILESIZE_LARGE]
    assert handle.curl.opts[pycurl.MAXFILESIZE_LARGE] == 0
    _curl.configure(handle, base.derive(size=3000, timeout=6), "http://example.org/d")
    assert handle.curl.resets == 2 and handle.curl.opts[pycurl.MAXFILESIZE_LARGE] == 3000


def test_the_same_options_object_changed_in_place_is_read_again():
    """A batch's calls share one options object: reused as it is, it costs no
    reading of every option; changed in place (``opts.name = value``), it is read again."""
    handle = RecordingHandle()
    opts = URLGrabberOptions(timeout=5)
    _curl.configure(handle, opts, "http://example.org/a")
    handle.curl.calls.clear()
    _curl.configure(handle, opts, "http://example.org/b")
    assert handle.curl.calls == [pycurl.URL] and handle.curl.resets == 1
    opts.timeout = 7
    _curl.configure(handle, opts, "http://example.org/c")
    assert handle.curl.resets == 2
    assert handle.curl.opts[pycurl.CONNECTTIMEOUT_MS] == 7000
    other = URLGrabberOptions()
    other.user_agent = "x/1"  # a change to any options object: the next look is a full one
    handle.curl.calls.clear()
    _curl.configure(handle, opts, "http://example.org/d")
    assert handle.curl.calls == [pycurl.URL] and handle.curl.resets == 2  # (same values: kept)


def test_headers_changed_in_place_are_noticed():
    handle = RecordingHandle()
    hdrs = [("X-A", "1")]
    opts = URLGrabberOptions(http_headers=hdrs)
    _curl.configure(handle, opts, "http://example.org/a")
    hdrs.append(("X-B", "2"))
    _curl.configure(handle, opts, "http://example.org/a")
    assert handle.curl.opts[pycurl.HTTPHEADER] == ["X-A: 1", "X-B: 2"]


def test_the_ip_resolve_names_checked_are_the_ones_configure_knows():
    """grabber checks ip_resolve without loading libcurl: its names are _curl's table's."""
    from urlgrabber import grabber

    assert set(grabber._IP_RESOLVE) == {name for name in _curl._IPRESOLVE if name}


def _write(data):
    return len(data)


def _on_header(line):
    return None


def test_direct_wiring_sets_the_header_function_it_is_given_or_none():
    handle = RecordingHandle()
    sink = object()
    _curl.wire_observed(handle, _write, _on_header)
    assert handle.curl.opts[pycurl.HEADERFUNCTION] is _on_header
    _curl.wire_direct(handle, sink)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] == handle.writer.write
    assert pycurl.HEADERFUNCTION not in handle.curl.opts and not handle.header_cb
    handle.curl.calls.clear()
    _curl.wire_direct(handle, sink)
    assert handle.curl.calls == []  # (nothing to set or unset)
    lines = []
    _curl.wire_direct(handle, sink, lines.append)
    assert handle.curl.opts[pycurl.HEADERFUNCTION] == lines.append and handle.header_cb
    _curl.wire_direct(handle, sink)
    assert pycurl.HEADERFUNCTION not in handle.curl.opts and not handle.header_cb


def test_direct_attempts_share_the_handle_writer_set_once():
    """The handle's DirectWriter is its WRITEFUNCTION from the first direct attempt on;
    later ones only point it at their sink, until something else was set (an observed
    attempt, a writer of the caller's own, a reset) or the curl object was replaced."""
    handle = RecordingHandle()
    first, second = object(), object()
    _curl.wire_direct(handle, first)
    assert handle.curl.calls == [pycurl.WRITEFUNCTION] and handle.writer.sink is first
    _curl.wire_direct(handle, second)
    assert handle.curl.calls == [pycurl.WRITEFUNCTION] and handle.writer.sink is second
    _curl.wire_observed(handle, _write, _on_header)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] is _write
    _curl.wire_direct(handle, first)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] == handle.writer.write
    _curl.wire_direct(handle, first, write=_write)  # (a split download's probe)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] is _write and not handle.wired
    _curl.wire_direct(handle, second)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] == handle.writer.write and handle.wired
    # a new plan resets the curl handle, and with it the WRITEFUNCTION
    _curl.configure(handle, URLGrabberOptions(), "http://example.org/f")
    assert pycurl.WRITEFUNCTION not in handle.curl.opts and not handle.wired
    assert handle.writer.sink is None  # (the last attempt's sink is not kept)
    _curl.wire_direct(handle, first)
    assert handle.curl.opts[pycurl.WRITEFUNCTION] == handle.writer.write


def test_a_renewed_handle_sets_its_writer_again():
    handle = _curl.Handle()
    handle.wired, handle.writer.sink = True, object()
    handle.renew()
    assert not handle.wired and handle.writer.sink is None


