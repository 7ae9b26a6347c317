"""Fixtures shared by the urlgrabber tests (servers, TLS CA, FTP, ...)."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # also works with --import-mode=importlib
    sys.path.insert(0, _HERE)

from modes import MODES  # noqa: E402
from server import FaultServer  # noqa: E402

from urlgrabber.grabber import URLGrabber  # noqa: E402

# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca():
    """The trustme CA that signed the HTTPS test servers' certificate."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_cert(tls_ca):
    return tls_ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def server_ssl_context(tls_server_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_server_cert.configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@pytest.fixture(scope="session")
def ca_file(tls_ca, tmp_path_factory) -> str:
    """Path of a PEM CA bundle that verifies ``tls_server`` (and any
    ``make_server(tls=True)``), for 127.0.0.1 and localhost."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


# ---------------------------------------------------------------------------
# HTTP(S) fault servers
# ---------------------------------------------------------------------------


@pytest.fixture
def make_server(request):
    """Factory: ``make_server(tls=False, **defaults)`` -> started FaultServer.

    Every server made is stopped at teardown."""
    servers: list[FaultServer] = []

    def factory(tls: bool = False, **defaults) -> FaultServer:
        ctx = request.getfixturevalue("server_ssl_context") if tls else None
        srv = FaultServer(tls=ctx)
        srv.defaults.update(defaults)
        servers.append(srv)
        return srv.start()

    yield factory
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server) -> FaultServer:
    return make_server()


@pytest.fixture
def server2(make_server) -> FaultServer:
    return make_server()


@pytest.fixture
def server3(make_server) -> FaultServer:
    return make_server()


@pytest.fixture
def tls_server(make_server) -> FaultServer:
    return make_server(tls=True)


@pytest.fixture
def dead_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------
# FTP
# ---------------------------------------------------------------------------


class FTPServerInfo:
    def __init__(self, host: str, port: int, root: Path, user: str, password: str):
        self.host = host
        self.port = port
        self.root = root
        self.user = user
        self.password = password
        self.url = f"ftp://{host}:{port}"

    def __repr__(self):
        return f"<FTPServerInfo {self.url} root={self.root}>"


@pytest.fixture
def ftp_server(tmp_path_factory):
    """pyftpdlib server on 127.0.0.1 serving ``.root`` (a fresh directory).

    ``.root`` is deliberately *not* inside the test's ``tmp_path``, so a test
    can list its own tmp_path without seeing the served tree.
    Anonymous login may read; ``.user``/``.password`` may also write."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("ftproot")
    authorizer = DummyAuthorizer()
    authorizer.add_user("user", "secret", str(root), perm="elradfmwMT")
    authorizer.add_anonymous(str(root), perm="elr")
    handler = type("TestFTPHandler", (FTPHandler,), {
        "authorizer": authorizer,
        "banner": "urlgrabber test ftpd ready",
        "timeout": 30,
        "auth_failed_timeout": 0.01,  # pyftpdlib waits 3s before a 530 by default
    })
    ioloop = IOLoop()  # private loop: never share the global IOLoop.instance()
    ftpd = FTPServer(("127.0.0.1", 0), handler, ioloop=ioloop)
    port = ftpd.socket.getsockname()[1]
    stop = threading.Event()

    def run():
        try:
            while not stop.is_set():
                ioloop.loop(timeout=0.02, blocking=False)
        finally:
            ftpd.close_all()

    thread = threading.Thread(target=run, name="ftpd", daemon=True)
    thread.start()
    try:
        yield FTPServerInfo("127.0.0.1", port, root, "user", "secret")
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture(params=MODES)
def mode(request) -> str:
    """Each behaviour test runs blocking and as a batch (see modes.py)."""
    return request.param


@pytest.fixture
def g() -> URLGrabber:
    return URLGrabber()


# ---------------------------------------------------------------------------
# batch queue
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_batch():
    """Never let a failed test leave requests queued for the next one."""
    yield
    from urlgrabber import _batch

    _batch.parallel_abort()
