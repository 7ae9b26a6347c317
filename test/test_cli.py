"""The ``urlgrabber`` command line: ``urlgrabber.cli.main`` in-process, and ``python -m urlgrabber``."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from util import gen_bytes

import urlgrabber
from urlgrabber import cli

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's urlgrabber."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def test_downloads_every_url_into_output_dir(server, tmp_path, capsys):
    a = server.add_file("/files/a.bin", b"alpha" * 1000)
    b = server.add_file("/files/b.bin", b"beta" * 2000)
    c = f"{server.url}/gen/70000/c.bin"
    rc = cli.main(["-q", "-o", str(tmp_path / "out"), a, b, c])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert (tmp_path / "out" / "a.bin").read_bytes() == b"alpha" * 1000
    assert (tmp_path / "out" / "b.bin").read_bytes() == b"beta" * 2000
    assert (tmp_path / "out" / "c.bin").read_bytes() == gen_bytes(70000, "c.bin")
    assert out == "" and err == ""


def test_progress_goes_to_stderr(server, tmp_path, capsys):
    url = f"{server.url}/gen/5000/p.bin"
    rc = cli.main(["-o", str(tmp_path), url])
    out, err = capsys.readouterr()
    assert rc == 0
    assert out == ""
    assert "p.bin" in err


def test_connection_limits_are_applied(server, tmp_path, capsys):
    server.defaults["latency"] = 0.05
    urls = [f"{server.url}/gen/1000/f{i}.bin" for i in range(12)]
    rc = cli.main(["-q", "-j", "10", "--per-host", "2", "-o", str(tmp_path), *urls])
    assert rc == 0, capsys.readouterr().err
    assert server.peak_inflight <= 2
    assert len(list(tmp_path.iterdir())) == 12


def test_404_exits_1_with_one_line_and_no_traceback(server, tmp_path, capsys):
    good = server.add_file("/ok.bin", b"ok")
    missing = f"{server.url}/missing.bin"
    rc = cli.main(["-q", "-o", str(tmp_path), good, missing])
    out, err = capsys.readouterr()
    assert rc == 1
    assert (tmp_path / "ok.bin").read_bytes() == b"ok"
    assert not (tmp_path / "missing.bin").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"urlgrabber: {missing}: ")
    assert "404" in lines[0]
    assert "Traceback" not in err and "Traceback" not in out


def test_dead_host_is_a_failure_not_a_crash(dead_url, tmp_path, capsys):
    rc = cli.main(["-q", "--retry", "1", "-o", str(tmp_path), f"{dead_url}/x.bin"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"urlgrabber: {dead_url}/x.bin: ")
    assert "Traceback" not in err


def test_mirror_with_a_dead_mirror_still_gets_every_file(server, dead_url, tmp_path, capsys):
    paths = [f"gen/{1000 + 500 * i}/m{i}.bin" for i in range(8)]
    rc = cli.main(["-q", "--mirror", dead_url + "/", "--mirror", server.url + "/",
                   "-o", str(tmp_path), *paths])
    assert rc == 0, capsys.readouterr().err
    for i in range(8):
        assert (tmp_path / f"m{i}.bin").read_bytes() == gen_bytes(1000 + 500 * i, f"m{i}.bin")


def test_mirror_failure_lists_each_mirror(server, dead_url, tmp_path, capsys):
    rc = cli.main(["-q", "--mirror", dead_url, "--mirror", server.url, "-o", str(tmp_path), "nothing/here.bin"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1
    assert err.startswith("urlgrabber: nothing/here.bin: ")
    assert dead_url in err and server.url in err and "404" in err


def test_input_file_skips_blank_lines_and_comments(server, tmp_path, capsys):
    urls = [f"{server.url}/gen/{300 * (i + 1)}/in{i}.bin" for i in range(3)]
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# the files\n\n{urls[0]}\n   {urls[1]}  \n# {server.url}/missing\n{urls[2]}\n\n")
    out_dir = tmp_path / "out"
    rc = cli.main(["-q", "-i", str(listing), "-o", str(out_dir)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out_dir.iterdir()) == ["in0.bin", "in1.bin", "in2.bin"]
    assert (out_dir / "in1.bin").read_bytes() == gen_bytes(600, "in1.bin")


def test_input_file_dash_reads_stdin(server, tmp_path, capsys, monkeypatch):
    url = server.add_file("/stdin.bin", b"from stdin")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"\n# comment\n{url}\n"))
    rc = cli.main(["-q", "-i", "-", "-o", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "stdin.bin").read_bytes() == b"from stdin"


def test_sha256_match_passes(server, tmp_path, capsys):
    data = b"checked" * 500
    url = server.add_file("/good.bin", data)
    rc = cli.main(["-q", "-o", str(tmp_path), "--sha256", f"good.bin={hashlib.sha256(data).hexdigest()}", url])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "good.bin").read_bytes() == data


def test_sha256_mismatch_fails_and_leaves_no_file(server, tmp_path, capsys):
    url = server.add_file("/bad.bin", b"not what you expected")
    wrong = hashlib.sha256(b"something else").hexdigest()
    rc = cli.main(["-q", "--retry", "1", "-o", str(tmp_path), "--sha256", f"{url}={wrong}", url])
    err = capsys.readouterr().err
    assert rc == 1
    assert server.by_path["/bad.bin"] == 2  # a mismatch is retried once (--retry 1), then fails
    assert not (tmp_path / "bad.bin").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either
    assert err.startswith(f"urlgrabber: {url}: ")
    assert "sha256" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    [],                                             # no URL at all
    ["-j", "0", "http://127.0.0.1:1/x"],            # bad number
    ["--timeout", "soon", "http://127.0.0.1:1/x"],
    ["--sha256", "x.bin=abc", "http://127.0.0.1:1/x.bin"],            # not a sha256
    ["--sha256", "y.bin=" + "0" * 64, "http://127.0.0.1:1/x.bin"],    # matches no download
    ["--no-such-option", "http://127.0.0.1:1/x"],
    ["--files", "3", "http://127.0.0.1:1/x"],       # --files without --demo
])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: urlgrabber" in err
    assert "Traceback" not in err


def test_missing_input_file_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["-i", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read input file" in capsys.readouterr().err


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"urlgrabber {urlgrabber.__version__}"
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--output-dir", "--connections", "--per-host", "--mirror", "--sha256", "--demo"):
        assert option in out


def test_keyboard_interrupt_exits_130_without_traceback(server, tmp_path, capsys, monkeypatch):
    def interrupted(raise_errors=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(urlgrabber, "parallel_end", interrupted)
    rc = cli.main(["-q", "-o", str(tmp_path), f"{server.url}/gen/10/k.bin"])
    err = capsys.readouterr().err
    assert rc == 130
    assert err.strip() == "urlgrabber: interrupted"
    monkeypatch.undo()
    assert urlgrabber.parallel_end() == []  # the aborted batch left nothing queued


@pytest.mark.parametrize("paths", [("/one/same.bin", "/two/same.bin"), ("/q.bin?v=1", "/q.bin?v=2")])
def test_same_output_name_twice_is_a_usage_error_naming_both(server, tmp_path, capsys, paths):
    a, b = (f"{server.url}{p}" for p in paths)
    rc = cli.main(["-q", "-o", str(tmp_path), a, b])
    err = capsys.readouterr().err
    assert rc == 2
    assert a in err and b in err and "-x/--keep-paths" in err and "out=NAME" in err
    assert list(tmp_path.iterdir()) == []  # nothing fetched
    assert server.requests == 0


def test_output_name():
    assert cli.output_name("http://h/a/b%20c.rpm?x=1") == "b c.rpm"
    assert cli.output_name("http://h/") == "index.html"
    assert cli.output_name("http://h/a/..") == "index.html"
    assert cli.output_name("repodata/repomd.xml") == "repomd.xml"


def test_python_dash_m_urlgrabber(server, tmp_path):
    good = f"{server.url}/gen/4096/sub.bin"
    missing = f"{server.url}/missing.bin"
    proc = subprocess.run([sys.executable, "-m", "urlgrabber", "-q", "-o", str(tmp_path), good],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sub.bin").read_bytes() == gen_bytes(4096, "sub.bin")
    proc = subprocess.run([sys.executable, "-m", "urlgrabber", "-q", "-o", str(tmp_path), missing],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"urlgrabber: {missing}: ") and "Traceback" not in proc.stderr


def test_scripts_urlgrabber_is_executable():
    script = ROOT / "scripts" / "urlgrabber"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    proc = subprocess.run([sys.executable, str(script), "--version"],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"urlgrabber {urlgrabber.__version__}"


def test_demo(capsys):
    rc = cli.main(["--demo", "--quiet", "--files", "40"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "all 40 files verified" in out
    assert "speed-up" in out
    assert err == ""  # --quiet: no progress meter
