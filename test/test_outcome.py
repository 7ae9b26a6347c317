"""Unit tests of the failure table (_outcome) and the policies (_policy): Timeout, Retry.

In the style of urllib3's test_retry.py: no network, each rule on its own.
"""

from __future__ import annotations

import pytest

from urlgrabber._outcome import Cause, Health, cause_of, from_curl, from_error, from_http
from urlgrabber._policy import Retry, Timeout
from urlgrabber.errors import URLGrabError
from urlgrabber.grabber import URLGrabberOptions

URL = "http://user:s3cret@example.org/f"


@pytest.mark.parametrize(("errnum", "received", "cause", "errno"), [
    (7, 0, Cause.UNREACHABLE, 14),
    (6, 0, Cause.UNREACHABLE, 14),
    (28, 0, Cause.STALL, 12),
    (28, 10, Cause.STALL, 12),
    (56, 10, Cause.RESET, 14),
    (56, 0, Cause.UNREACHABLE, 14),     # broke before any byte: nothing to resume
    (18, 10, Cause.NETWORK_CUT, 14),
    (23, 0, Cause.LOCAL, 16),
    (33, 0, Cause.RANGE, 9),
    (60, 0, Cause.TLS, 14),
    (63, 0, Cause.TOO_BIG, 14),
    (3, 0, Cause.BAD_REQUEST, 1),
    (1, 0, Cause.BAD_REQUEST, 14),      # a redirect to a refused protocol (file://)
    (42, 0, Cause.INTERRUPTED, 15),
    (9999, 0, Cause.SERVER_ERROR, 14),  # unknown: the server's side, counted against it
])
def test_curl_codes(errnum, received, cause, errno):
    result = from_curl(errnum, "some message", URL, received)
    assert result.cause is cause
    assert result.error.errno == errno
    assert result.error.code == errnum
    assert "s3cret" not in str(result.error) and "s3cret" not in result.error.url
    assert not result.ok


@pytest.mark.parametrize(("status", "cause", "errno", "health"), [
    (404, Cause.MISSING, 14, Health.NONE),
    (403, Cause.MISSING, 14, Health.NONE),
    (416, Cause.RANGE, 9, Health.NONE),
    (429, Cause.BUSY, 14, Health.RESTING),
    (503, Cause.BUSY, 14, Health.RESTING),
    (500, Cause.SERVER_ERROR, 14, Health.FAILED),
    (502, Cause.SERVER_ERROR, 14, Health.FAILED),
])
def test_http_statuses(status, cause, errno, health):
    result = from_http(status, "Reason", URL, retry_after=2.0)
    assert (result.cause, result.error.errno, result.error.code, result.health) == (cause, errno, status, health)
    assert result.retry_after == 2.0
    assert str(result.error) == f"[Errno {errno}] HTTP Error {status} - Reason: http://user:***@example.org/f"


def test_health_of_causes():
    assert from_curl(7, "", URL).health is Health.OVERLOADED
    assert from_curl(56, "", URL, 10).health is Health.OVERLOADED  # reset mid-body
    assert from_curl(18, "", URL, 10).health is Health.FAILED      # a short body: not overload
    assert from_curl(28, "", URL).health is Health.RESTING
    assert from_curl(23, "", URL).health is Health.NONE          # our disk, not the mirror
    assert from_error(URLGrabError(-1, "bad sum")).health is Health.NONE


def test_errors_from_our_own_checks():
    assert from_error(URLGrabError(-1, "x")).cause is Cause.REJECTED
    assert from_error(URLGrabError(16, "x")).cause is Cause.LOCAL
    assert from_error(URLGrabError(8, "x")).cause is Cause.TOO_BIG
    assert from_error(URLGrabError(14, "x")).cause is Cause.OTHER
    assert from_error(URLGrabError(14, "x"), final=True).final


def test_cause_of_any_error():
    assert cause_of(URLGrabError(14, "x", code=404)) is Cause.MISSING
    assert cause_of(URLGrabError(14, "x", code=7)) is Cause.UNREACHABLE
    assert cause_of(URLGrabError(12, "x")) is Cause.STALL


def test_timeout_meanings():
    t = Timeout.of(2.5)
    assert (t.connect, t.stall, t.low_speed, t.retry_after_cap) == (2.5, 2.5, 2, 2.5)
    none = Timeout.of(None)
    assert (none.connect, none.stall, none.low_speed, none.retry_after_cap) == (None, None, 30, 30.0)
    assert Timeout.of(2.5) is t  # shared: built once per value


def test_timeout_cache_stays_small():
    first = Timeout.of(1.0)
    for i in range(1000):  # a caller with ever-new values
        Timeout.of(1000.0 + i)
    assert len(Timeout.of.__self__) <= 64
    assert Timeout.of(1.0).connect == 1.0 and Timeout.of(1.0) is Timeout.of(1.0)
    assert first.connect == 1.0  # (handed out before: still valid)


def test_causes_and_states_behave_as_enum_members():
    """_named's constants keep what callers and the engine use of Enum members."""
    import copy
    import pickle

    from urlgrabber._request import DONE, State

    assert Cause.STALL.name == "STALL" and Cause.STALL.value == "stall"
    assert repr(Cause.STALL) == "<Cause.STALL: 'stall'>" and f"{Health.NONE}" == "Health.NONE"
    assert isinstance(Cause.RANGE, Cause) and not isinstance(Cause.RANGE, Health)
    assert State.DONE is DONE and Health.NONE is not Health.FAILED and Health.NONE != Health.FAILED
    for member in (Cause.STALL, Health.RESTING, DONE):
        assert copy.copy(member) is member and copy.deepcopy(member) is member
        assert pickle.loads(pickle.dumps(member)) is member
    assert {Cause.BUSY: 1}[Cause.BUSY] == 1
    with pytest.raises(TypeError):
        Cause("stall")

    from urlgrabber._named import Named

    class Colour(Named):
        RED = "red"

        def shout(self) -> str:  # a method stays a method, not a member
            return self.name.upper() + "!"

    assert isinstance(Colour.RED, Colour) and Colour.RED.shout() == "RED!" and callable(Colour.shout)


def retry(**opts):
    return Retry(URLGrabberOptions(**opts))


def test_no_retry_by_default():
    assert not retry().allows(from_curl(7, "", URL), tries=1)


def test_retry_counts_attempts_on_one_url():
    r = retry(retry=3, retrycodes=[14])
    err = from_curl(7, "", URL)
    assert r.allows(err, tries=1)
    assert r.allows(err, tries=2)
    assert not r.allows(err, tries=3)


def test_retry_only_listed_errnos():
    r = retry(retry=3)  # classic default retrycodes: -1, 2, 4, 5, 6, 7
    assert not r.allows(from_http(503, "", URL), tries=1)  # errno 14
    assert r.allows(from_error(URLGrabError(-1, "bad sum")), tries=1)


def test_final_result_is_never_retried():
    assert not retry(retry=5, retrycodes=[14]).allows(from_error(URLGrabError(14, "x"), final=True), tries=1)


def test_interrupted_attempt_is_retried_whatever_retrycodes():
    from urlgrabber._outcome import AttemptResult

    interrupted = AttemptResult(URLGrabError(15, "user abort"), Cause.INTERRUPTED)
    assert retry(retry=2, retrycodes=[]).allows(interrupted, tries=1)
    assert not retry(retry=2, retrycodes=[]).allows(interrupted, tries=2)


def test_fresh_copy_after_a_rejected_body():
    rejected = from_error(URLGrabError(-1, "bad sum"))
    assert retry(retry_no_cache=True).wants_fresh_copy(rejected)
    assert not retry(retry_no_cache=False).wants_fresh_copy(rejected)
    assert not retry(retry_no_cache=True).wants_fresh_copy(from_curl(7, "", URL))


def test_retry_after_is_capped_by_timeout():
    assert Retry.delay(from_http(503, "", URL, retry_after=120), Timeout.of(5)) == 5
    assert Retry.delay(from_http(503, "", URL, retry_after=2), Timeout.of(5)) == 2
    assert Retry.delay(from_http(503, "", URL, retry_after=99), Timeout.of(None)) == 30


def test_retries_back_off_with_jitter():
    no_header = from_http(503, "", URL)
    first = [Retry.delay(no_header, Timeout.of(5), tries=1) for _ in range(50)]
    assert all(0.05 <= d <= 0.1 for d in first) and len(set(first)) > 1  # jittered
    assert all(0.1 <= Retry.delay(no_header, Timeout.of(5), tries=2) <= 0.2 for _ in range(20))
    assert all(1.0 <= Retry.delay(no_header, Timeout.of(5), tries=10) <= 2.0 for _ in range(20))  # capped


def test_retry_log_lines():
    lines = []

    def log(msg, *args):
        lines.append(msg % args)

    retry(retry=2).allows(from_http(503, "", URL), tries=1, log=log)
    retry(retry=2, retrycodes=[14]).allows(from_http(503, "", URL), tries=2, log=log)
    assert lines == ["retrycode (14) not in list [-1, 2, 4, 5, 6, 7], re-raising",
                     "retries exceeded, re-raising"]


def test_retry_after_parsed_from_header_lines():
    from urlgrabber._transfer import _parse_retry_after

    assert _parse_retry_after([b"Content-Type: text/plain\r\n", b"retry-AFTER: 7\r\n"]) == 7.0
    assert _parse_retry_after([b"Retry-After: soon\r\n"]) is None
    assert _parse_retry_after([b"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"]) == 0.0  # (past: at once)
    future = _parse_retry_after([b"Retry-After: Fri, 01 Jan 2100 00:00:00 GMT\r\n"])
    assert future is not None and future > 365 * 86400
    assert _parse_retry_after([]) is None


def _direct_attempt(max_header_size=2097152):
    from types import SimpleNamespace

    from urlgrabber._transfer import Transfer

    attempt = Transfer.__new__(Transfer)  # (only what these methods read)
    attempt.binding = SimpleNamespace(opts=SimpleNamespace(max_header_size=max_header_size), url=URL)
    attempt.failure = None
    return attempt


@pytest.mark.parametrize("libcurl_limit", [300 * 1024, 0], ids=["libcurl-8.3+", "libcurl-before-8.3"])
@pytest.mark.parametrize("retry_after_info", [0x600039, None], ids=["pycurl-reads-retry-after", "pycurl-7.45"])
def test_what_a_direct_attempt_gets_per_header_line(monkeypatch, libcurl_limit, retry_after_info):
    """Nothing where libcurl reads Retry-After and caps the headers itself; a list's C
    append where only Retry-After needs the lines; our counter where libcurl has no cap."""
    from urlgrabber import _curl

    monkeypatch.setattr(_curl, "HEADER_LIMIT", libcurl_limit)
    monkeypatch.setattr(_curl, "RETRY_AFTER_INFO", retry_after_info)
    attempt = _direct_attempt()
    fn = attempt.direct_headers()
    if libcurl_limit == 0:
        assert fn == attempt.on_direct_header and attempt.max_header == 2097152
    elif retry_after_info is None:
        assert fn == attempt.header_lines.append and type(fn) is type([].append)
    else:
        assert fn is None and attempt.header_lines == ()
    assert _direct_attempt(max_header_size=1000).direct_headers() is not None  # (below any libcurl's cap)
    unlimited = _direct_attempt(max_header_size=0).direct_headers()  # (no limit to count against)
    assert (unlimited is None) == (retry_after_info is not None)


def test_direct_header_counter_keeps_lines_and_stops_past_the_limit(monkeypatch):
    from urlgrabber import _curl

    monkeypatch.setattr(_curl, "HEADER_LIMIT", 0)
    attempt = _direct_attempt(max_header_size=30)
    count = attempt.direct_headers()
    assert count(b"HTTP/1.1 200 OK\r\n") is None and count(b"X-A: 1\r\n") is None
    assert attempt.header_lines == [b"HTTP/1.1 200 OK\r\n", b"X-A: 1\r\n"]
    assert count(b"X-B: " + b"b" * 20 + b"\r\n") == -1  # (libcurl then stops: error 23)
    assert attempt.failure.error.errno == 14 and "Header size exceeded 30 bytes" in str(attempt.failure.error)


def test_direct_attempt_reads_retry_after_of_the_last_response(monkeypatch):
    """With a pycurl that cannot read CURLINFO_RETRY_AFTER, the kept header lines of
    every response the attempt saw (a redirect's too) are read from the last one."""
    from urlgrabber import _curl

    monkeypatch.setattr(_curl, "RETRY_AFTER_INFO", None)
    lines = [b"HTTP/1.1 302 Found\r\n", b"Retry-After: 99\r\n", b"Location: /x\r\n", b"\r\n",
             b"HTTP/1.1 503 Busy\r\n", b"Retry-After: 3\r\n", b"\r\n"]
    attempt = _direct_attempt()
    attempt.header_lines = lines
    assert attempt._direct_retry_after() == 3.0
    attempt.header_lines = [*lines[:4], b"HTTP/1.1 503 Busy\r\n", b"\r\n"]
    assert attempt._direct_retry_after() is None  # (not the redirect's)
