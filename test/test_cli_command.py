"""The ``urlgrabber`` command run as a real process (``python -m urlgrabber``) against the
test servers: retries, failures, signals, the display on a pseudo-terminal, resume,
JSON and the HTTP/TLS flags."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from util import NAMED_TEMPS_CODE, TEMP_KINDS, gen_bytes, unnamed_files, use_temp_kind

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
_CURSOR = re.compile(r"\x1b\[K")


def _env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's urlgrabber."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("NETRC", None)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """Run the command to its end (60 s at most); stdout and stderr as text."""
    return subprocess.run([sys.executable, "-m", "urlgrabber", *args], capture_output=True, text=True,
                          timeout=60, env=env or _env(), **kw)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def _ranges(server, path: str) -> list[str | None]:
    return [e["range"] for e in server.log if e["path"] == path]


# ---------------------------------------------------------------------------
# --retry: transient failures are retried, a 404 is final


@pytest.mark.parametrize("knobs", [
    "fail_first=2&fail_status=503",
    "fail_first=1&fail_status=429",
    "fail_first=1&fail_status=500",
    "fail_first=1&fail_status=502&retry_after=0",
])
def test_retry_retries_server_errors(server, tmp_path, knobs):
    proc = run_cli("-q", "--retry", "2", "-o", str(tmp_path), f"{server.url}/gen/3000/r.bin?{knobs}")
    _ok(proc)
    assert (tmp_path / "r.bin").read_bytes() == gen_bytes(3000, "r.bin")
    assert server.by_path["/gen/3000/r.bin"] == int(knobs.split("&")[0].split("=")[1]) + 1


def test_retry_0_does_not_retry(server, tmp_path):
    proc = run_cli("-q", "--retry", "0", "-o", str(tmp_path), f"{server.url}/gen/30/r.bin?fail_first=1")
    assert proc.returncode == 1
    assert "503" in proc.stderr
    assert server.by_path["/gen/30/r.bin"] == 1


def test_retry_resumes_a_cut_body_with_range(server, tmp_path):
    # every response is cut after 40000 bytes: only resuming ever completes the file
    proc = run_cli("-q", "--retry", "3", "-o", str(tmp_path), f"{server.url}/gen/100000/cut.bin?truncate=40000")
    _ok(proc)
    assert (tmp_path / "cut.bin").read_bytes() == gen_bytes(100000, "cut.bin")
    assert _ranges(server, "/gen/100000/cut.bin") == [None, "bytes=40000-", "bytes=80000-"]


def test_retry_resumes_after_a_stall(server, tmp_path):
    url = f"{server.url}/gen/60000/st.bin?stall_at=30000&stall=20"
    proc = run_cli("-q", "--retry", "2", "--timeout", "0.5", "-o", str(tmp_path), url)
    _ok(proc)
    assert (tmp_path / "st.bin").read_bytes() == gen_bytes(60000, "st.bin")
    assert _ranges(server, "/gen/60000/st.bin")[:2] == [None, "bytes=30000-"]


def test_retry_survives_refused_and_reset_connections(server, tmp_path):
    server.go_down(0.4)  # connections are reset for 0.4 s: backoff 0.1 + 0.2 + 0.4 + ... outlasts it
    proc = run_cli("-q", "--retry", "6", "-o", str(tmp_path), f"{server.url}/gen/2000/down.bin")
    _ok(proc)
    assert (tmp_path / "down.bin").read_bytes() == gen_bytes(2000, "down.bin")


def test_404_is_final(server, tmp_path):
    proc = run_cli("-q", "--retry", "3", "-o", str(tmp_path), f"{server.url}/nope.bin")
    assert proc.returncode == 1
    assert server.by_path["/nope.bin"] == 1
    assert proc.stderr.count("\n") == 1 and "404" in proc.stderr


def test_404_fails_over_to_the_next_mirror(server, server2, tmp_path):
    server2.add_file("/pub/a/f.bin", b"from mirror two")
    proc = run_cli("-q", "--retry", "3", "--mirror", f"{server.url}/pub", "--mirror", f"{server2.url}/pub",
                   "-o", str(tmp_path), "a/f.bin")
    _ok(proc)
    assert (tmp_path / "f.bin").read_bytes() == b"from mirror two"
    assert server.by_path["/pub/a/f.bin"] == 1  # a 404 is not retried on the same mirror


def test_verbose_says_retries_and_failovers(server, server2, tmp_path):
    server2.add_file("/pub/v.bin", b"v" * 100)
    proc = run_cli("-v", "--retry", "1", "--mirror", f"{server.url}/pub", "--mirror", f"{server2.url}/pub",
                   "-o", str(tmp_path), "v.bin", f"{server2.url}/gen/10/w.bin?fail_first=1")
    _ok(proc)
    err = proc.stderr
    assert "trying the next mirror" in err and "404" in err
    assert "retrying (attempt 2 of 2)" in err
    assert f"from {server2.url}/pub/v.bin" in err
    assert "retries/failovers" in err.splitlines()[-1]  # one failover, one retry


# ---------------------------------------------------------------------------
# bad input fails alone; errors are redacted


def test_malformed_url_fails_alone(server, tmp_path):
    good = f"{server.url}/gen/500/good.bin"
    proc = run_cli("-q", "-o", str(tmp_path), "http://[::1", good)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("urlgrabber: http://[::1: malformed URL")
    assert proc.stderr.count("\n") == 1
    assert (tmp_path / "good.bin").read_bytes() == gen_bytes(500, "good.bin")


def test_error_lines_redact_the_password(server, tmp_path):
    url = f"http://user:s3cr3t@{server.url[7:]}/missing.bin"
    proc = run_cli("-o", str(tmp_path), url)
    assert proc.returncode == 1
    assert "s3cr3t" not in proc.stderr + proc.stdout
    assert "user:***@" in proc.stderr or "user@" in proc.stderr
    proc = run_cli("-q", "--json", "-o", str(tmp_path), url)
    assert "s3cr3t" not in proc.stderr + proc.stdout


def test_full_url_with_mirror_is_fetched_directly(server, server2, tmp_path):
    url = f"{server2.url}/gen/100/direct.bin"
    proc = run_cli("-q", "--mirror", f"{server.url}/pub", "-o", str(tmp_path), url)
    _ok(proc)
    assert (tmp_path / "direct.bin").read_bytes() == gen_bytes(100, "direct.bin")
    assert server.requests == 0


def test_file_size_limit_says_so_not_curl_23(server, tmp_path):
    """A full disk (here RLIMIT_FSIZE, which needs no root) prints the OS's reason."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))

    for quiet in ("-q", "-v"):  # libcurl writing directly, and the observed path
        proc = subprocess.run([sys.executable, "-m", "urlgrabber", quiet, "-o", str(tmp_path),
                               f"{server.url}/gen/300000/big.bin"], capture_output=True, text=True,
                              timeout=60, env=_env(), preexec_fn=limit)
        assert proc.returncode == 1
        assert "File too large" in proc.stderr and "curl#23" not in proc.stderr
        assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# signals


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 20.0) -> str:
    """Read proc.stderr until a line contains ``needle`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen = ""
    fd = proc.stderr.fileno()
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096).decode(errors="replace")
            assert chunk, f"stderr closed before {needle!r}: {seen!r}"
            seen += chunk
    return seen


@pytest.mark.parametrize("kind", TEMP_KINDS)
@pytest.mark.parametrize("signame,status", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_signal_cleans_up_and_keeps_the_old_file(server, tmp_path, signame, status, kind, monkeypatch):
    use_temp_kind(monkeypatch, kind, tmp_path)  # (that it is to be had here; the child is told)
    (tmp_path / "slow.bin").write_bytes(b"old")
    url = f"{server.url}/gen/400000/slow.bin?bw=40000"
    code = NAMED_TEMPS_CODE if kind == "named" else ""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # (a runner that ignores SIGINT passes that on, and Python then leaves Ctrl-C
        # ignored, as any program would: the child is given back its default)
        code += "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    run = ["-c", code + "import runpy; runpy.run_module('urlgrabber', run_name='__main__')"] if code else \
        ["-m", "urlgrabber"]
    proc = subprocess.Popen([sys.executable, *run,
                             "-v", "-o", str(tmp_path), url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        _wait_for_line(proc, "from ")  # the body started: a temporary file exists
        if kind == "named":
            assert any(name.endswith(".part") for name in os.listdir(tmp_path))
        else:  # written, and nowhere to be seen in the directory
            assert unnamed_files(proc.pid, tmp_path)
            assert os.listdir(tmp_path) == ["slow.bin"]
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = proc.stderr.read().decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == ["slow.bin"]
    assert (tmp_path / "slow.bin").read_bytes() == b"old"


# ---------------------------------------------------------------------------
# the display


def _run_on_pty(args: list[str], columns: int, timeout: float = 60.0) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal ``columns`` wide; (status, what it showed)."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "urlgrabber", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=_env(COLUMNS="999"))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, out
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            out += chunk
        status = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return status, out.decode("utf-8", "replace")


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_status_line_redrawn_in_place_and_fits(server, tmp_path, columns):
    slow = [f"{server.url}/gen/150000/slow{i}.bin?bw=150000" for i in range(2)]
    fast = [f"{server.url}/gen/2000/fast-file-with-a-rather-long-name-{i}.bin" for i in range(5)]
    status, shown = _run_on_pty(["-o", str(tmp_path), *slow, *fast, f"{server.url}/missing.bin"], columns)
    assert status == 1, shown
    text = _CURSOR.sub("", shown)
    pieces = [p for p in re.split(r"[\r\n]", text) if p]
    assert all(len(p) <= columns - 1 for p in pieces), [p for p in pieces if len(p) >= columns]
    redraws = [p for p in pieces if p.startswith("[") and "/8]" in p]
    assert len(redraws) >= 3, pieces  # the status line moved while the slow files came in
    assert any("B/s" in p for p in redraws)
    if columns >= 80:
        assert any("%" in p and "ETA" in p for p in redraws)
    assert sum(1 for p in pieces if p.startswith("done ")) == 7
    # what stays on screen: each line's last text after its carriage returns
    lines = [next((seg for seg in reversed(line.split("\r")) if seg), "") for line in text.split("\n")]
    screen = " ".join(line.strip() for line in lines)
    assert screen.count("missing.bin") == 1  # the failure is printed once...
    assert re.search(r"urlgrabber: http://\S+/missing.bin: HTTP Error 404", screen)  # ... wrapped, not cut
    summary = " ".join(line.strip() for line in lines[-4:])
    assert "7 of 8 files" in summary and "1 failed" in summary


def test_no_carriage_returns_when_stderr_is_not_a_terminal(server, tmp_path):
    urls = [f"{server.url}/gen/100000/n{i}.bin?bw=200000" for i in range(2)]
    proc = run_cli("-o", str(tmp_path), *urls, f"{server.url}/gone.bin")
    assert proc.returncode == 1
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert sum(1 for line in lines if "gone.bin" in line) == 1  # each failure once
    assert sum(1 for line in lines if line.startswith("done ")) == 2
    assert lines[-1].startswith("total: 2 of 3 files, 195 kB in ")
    assert lines[-1].endswith(", 1 failed")


# ---------------------------------------------------------------------------
# features


def test_continue_resumes_a_part_file_kept_across_runs(server, tmp_path):
    (tmp_path / "c.bin").write_bytes(b"old")
    url = f"{server.url}/gen/90000/c.bin"
    proc = run_cli("-q", "-c", "--retry", "0", "-o", str(tmp_path), url + "?truncate=30000")
    assert proc.returncode == 1
    assert (tmp_path / "c.bin").read_bytes() == b"old"  # the old file is untouched
    assert (tmp_path / "c.bin.part").read_bytes() == gen_bytes(90000, "c.bin")[:30000]
    proc = run_cli("-q", "-c", "-o", str(tmp_path), url)
    _ok(proc)
    assert (tmp_path / "c.bin").read_bytes() == gen_bytes(90000, "c.bin")
    assert sorted(os.listdir(tmp_path)) == ["c.bin"]
    assert _ranges(server, "/gen/90000/c.bin") == [None, "bytes=30000-"]


def test_continue_drops_a_part_that_fails_its_checksum(server, tmp_path):
    (tmp_path / "k.bin.part").write_bytes(b"garbage!")
    url = server.add_file("/k.bin", b"0123456789" * 10)
    wrong = hashlib.sha256(b"x").hexdigest()
    proc = run_cli("-q", "-c", "--retry", "1", "--sha256", f"k.bin={wrong}", "-o", str(tmp_path), url)
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_no_clobber_skips_existing_files(server, tmp_path):
    (tmp_path / "keep.bin").write_bytes(b"mine")
    proc = run_cli("--no-clobber", "-o", str(tmp_path), f"{server.url}/gen/10/keep.bin",
                   f"{server.url}/gen/10/new.bin")
    _ok(proc)
    assert (tmp_path / "keep.bin").read_bytes() == b"mine"
    assert (tmp_path / "new.bin").exists()
    assert server.by_path["/gen/10/keep.bin"] == 0
    assert "1 skipped" in proc.stderr.splitlines()[-1]


def test_json_report(server, server2, tmp_path):
    server2.add_file("/pub/m.bin", b"mirrored")
    proc = run_cli("-q", "--json", "--mirror", f"{server.url}/pub", "--mirror", f"{server2.url}/pub",
                   "-o", str(tmp_path), "m.bin", f"{server.url}/gen/1000/p.bin", f"{server.url}/none.bin")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    files = {Path(f["url"]).name: f for f in doc["files"]}
    m, p, none = files["m.bin"], files["p.bin"], files["none.bin"]
    assert m["mirror"] == f"{server2.url}/pub" and m["size"] == 8 and m["attempts"] == 2
    assert m["sha256"] == hashlib.sha256(b"mirrored").hexdigest() and m["error"] is None
    assert m["path"] == str(tmp_path / "m.bin")
    assert p["mirror"] is None and p["size"] == 1000 and p["seconds"] >= 0 and p["attempts"] == 1
    assert none["error"]["errno"] == 14 and none["error"]["code"] == 404
    assert "404" in none["error"]["message"] and none["size"] is None
    assert (doc["ok"], doc["failed"]) == (2, 1)


def test_keep_paths(server, server2, tmp_path):
    server2.add_file("/pub/repodata/repomd.xml", b"<repomd/>")
    proc = run_cli("-q", "-x", "--mirror", f"{server2.url}/pub", "-o", str(tmp_path), "repodata/repomd.xml",
                   f"{server.url}/gen/10/dir/x.bin")
    _ok(proc)
    assert (tmp_path / "repodata" / "repomd.xml").read_bytes() == b"<repomd/>"
    host = server.url[7:].replace(":", "_")
    assert (tmp_path / host / "gen" / "10" / "dir" / "x.bin").read_bytes() == gen_bytes(10, "dir/x.bin")


def test_input_file_out_sha256_and_size(server, tmp_path):
    good = gen_bytes(500, "a.bin")
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"{server.url}/gen/500/a.bin out=sub/renamed.bin sha256={hashlib.sha256(good).hexdigest()}\n"
        f"{server.url}/gen/500/b.bin size=499\n"
        f"{server.url}/gen/20/c.bin size=20\n")
    proc = run_cli("-q", "-i", str(listing), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert (tmp_path / "out" / "sub" / "renamed.bin").read_bytes() == good
    assert (tmp_path / "out" / "c.bin").exists() and not (tmp_path / "out" / "b.bin").exists()
    assert "b.bin" in proc.stderr and proc.stderr.count("\n") == 1


def test_input_file_bad_setting_is_a_usage_error(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:1/a.bin colour=blue\n")
    proc = run_cli("-i", str(listing))
    assert proc.returncode == 2 and "colour=blue" in proc.stderr


def test_checksums_file(server, tmp_path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{hashlib.sha256(gen_bytes(10, 'ok.bin')).hexdigest()}  ok.bin\n"
                    f"{hashlib.sha256(b'other').hexdigest()} *bad.bin\n"
                    f"{'0' * 64}  not-downloaded.iso\n")
    out = tmp_path / "out"
    proc = run_cli("-q", "--retry", "0", "--checksums", str(sums), "-o", str(out),
                   f"{server.url}/gen/10/ok.bin", f"{server.url}/gen/10/bad.bin")
    assert proc.returncode == 1
    assert os.listdir(out) == ["ok.bin"]
    assert "bad.bin" in proc.stderr and "sha256 mismatch" in proc.stderr


def test_header_and_user_agent(server, tmp_path):
    proc = run_cli("-q", "--header", "X-Test: yes", "--user-agent", "tester/1", "-o", str(tmp_path),
                   f"{server.url}/echo/headers")
    _ok(proc)
    headers = json.loads((tmp_path / "headers").read_text())
    assert headers["x-test"] == "yes" and headers["user-agent"] == "tester/1"


def test_ca_cert_and_insecure(tls_server, ca_file, tmp_path):
    url = f"{tls_server.url}/gen/100/t.bin"
    assert run_cli("-q", "--retry", "0", "-o", str(tmp_path), url).returncode == 1  # unknown CA
    _ok(run_cli("-q", "--ca-cert", ca_file, "-o", str(tmp_path / "a"), url))
    proc = run_cli("-q", "--insecure", "-o", str(tmp_path / "b"), url)
    _ok(proc)
    assert "warning: --insecure" in proc.stderr
    assert (tmp_path / "b" / "t.bin").read_bytes() == gen_bytes(100, "t.bin")


def test_proxy(server, tmp_path):
    proc = run_cli("-q", "--proxy", server.url, "-o", str(tmp_path), "http://example.invalid/gen/50/px.bin")
    _ok(proc)
    assert (tmp_path / "px.bin").read_bytes() == gen_bytes(50, "px.bin")
    assert server.log[-1]["target"] == "http://example.invalid/gen/50/px.bin"


def test_netrc(server, tmp_path):
    rc_file = tmp_path / "netrc"
    rc_file.write_text("machine 127.0.0.1 login alice password wonder\n")
    rc_file.chmod(0o600)
    url = f"{server.url}/gen/10/n.bin?auth=alice:wonder"
    assert run_cli("-q", "-o", str(tmp_path / "a"), url).returncode == 1
    _ok(run_cli("-q", "--netrc", "-o", str(tmp_path / "b"), url, env=_env(NETRC=str(rc_file))))


def test_limit_rate(server, tmp_path):
    t0 = time.monotonic()
    _ok(run_cli("-q", "--limit-rate", "100k", "-o", str(tmp_path), f"{server.url}/gen/250000/lr.bin"))
    # 250000 bytes at 102400 bytes/s: about 2.4 s, less a first burst (a second's worth
    # on libcurl 8; on 7.88, which reads at least 100 x 1 KB between checks, 100 KB):
    # 1.4 s at least.  Unlimited, the whole run takes 0.3 s.
    assert time.monotonic() - t0 >= 1.0
    assert (tmp_path / "lr.bin").read_bytes() == gen_bytes(250000, "lr.bin")


@pytest.mark.parametrize("argv", [
    ["--limit-rate", "fast", "http://127.0.0.1:1/x"],
    ["--header", "no colon", "http://127.0.0.1:1/x"],
    ["--ca-cert", "/no/such/ca.pem", "http://127.0.0.1:1/x"],
])
def test_flag_usage_errors(argv):
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "usage: urlgrabber" in proc.stderr and "Traceback" not in proc.stderr


def test_metalink(server, server2, tmp_path):
    data = gen_bytes(3000, "iso.img")
    server2.add_file("/m2/iso.img", data)
    doc = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="iso.img">
    <size>3000</size>
    <hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash>
    <url priority="1">{server.url}/m1/iso.img</url>
    <url priority="2">{server2.url}/m2/iso.img</url>
  </file>
</metalink>
"""
    meta = tmp_path / "f.meta4"
    meta.write_text(doc)
    proc = run_cli("-q", "--json", "--metalink", str(meta), "-o", str(tmp_path / "out"))
    _ok(proc)
    assert (tmp_path / "out" / "iso.img").read_bytes() == data
    entry = json.loads(proc.stdout)["files"][0]
    assert entry["mirror"] == f"{server2.url}/m2/iso.img" and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert server.by_path["/m1/iso.img"] == 1  # the 404 sent it to the next URL


def test_bad_metalink_is_a_usage_error(tmp_path):
    meta = tmp_path / "bad.meta4"
    meta.write_text("<not a metalink")
    proc = run_cli("--metalink", str(meta))
    assert proc.returncode == 2 and "metalink" in proc.stderr and "Traceback" not in proc.stderr
