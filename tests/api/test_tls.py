"""HTTPS and the environment requests reads, end to end: a TLS server on loopback with a certificate the test
makes, and a proxy on loopback.

A lookup over TLS works; trust (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, certifi, SSL_CERT_FILE, a session's
verify) and the route (HTTP_PROXY, ALL_PROXY, NO_PROXY in its forms) are decided exactly as ``requests.post``
decides them in the same environment; a bad CA path or a SOCKS proxy without PySocks is one sentence naming
the variable, not retried; and a trickling TLS server is cut off at the request's deadline as a plain one is.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters

from pulumi_ucloud_images import (
    Client,
    ConnectionFailedError,
    RetryPolicy,
    Settings,
    TransportError,
    lookup_images,
)
from pulumi_ucloud_images._emulator.catalog import build_catalog

pytestmark = pytest.mark.slow  # the certificate comes from an openssl process

IMAGE = next(record for record in build_catalog() if record["ImageId"] == "uimage-f1chxn")
ANSWER = json.dumps({"RetCode": 0, "Action": "DescribeImageResponse", "TotalCount": 1,
                     "ImageSet": [{k: v for k, v in IMAGE.items() if not k.startswith("_")}]}).encode()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the test's TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def serve(certificate: tuple[Path, Path], trickle: bool) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            for index in range(len(ANSWER) if trickle else 1):
                self.wfile.write(ANSWER[index:index + 1] if trickle else ANSWER)
                self.wfile.flush()
                if trickle:
                    time.sleep(0.5)

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    yield from serve(certificate, trickle=False)


@pytest.fixture
def trickling_tls_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    yield from serve(certificate, trickle=True)


KEYS: dict[str, Any] = {"region": "cn-bj2", "public_key": "pk", "private_key": "sk"}


def test_a_lookup_over_tls_trusts_the_ca_bundle_it_is_given(
    tls_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    assert lookup_images(image_id="uimage-f1chxn", base_url=tls_server, **KEYS).image_id == "uimage-f1chxn"


def test_a_certificate_nobody_vouches_for_is_refused(tls_server: str) -> None:
    with pytest.raises(TransportError, match=r"(?i)certificate"):
        lookup_images(image_id="uimage-f1chxn", base_url=tls_server, **KEYS)


def test_a_trickling_tls_server_is_cut_off_at_the_deadline(
    trickling_tls_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    started = time.monotonic()
    with pytest.raises(TransportError):
        lookup_images(image_id="uimage-f1chxn", base_url=trickling_tls_server, timeout=1, **KEYS)
    assert time.monotonic() - started < 30  # a generous bound: the body alone would take minutes


ONCE = RetryPolicy(attempts=1, total_seconds=20)
ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
               *(spelling for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
                 for spelling in (name, name.upper())))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def our_lookup(base_url: str, session: requests.Session | None = None) -> str:
    settings = Settings(public_key="pk", private_key="sk", region="cn-bj2", base_url=base_url, timeout=5)
    with Client(settings, session=session, retry=ONCE) as client:
        return lookup_images(client=client, image_id="uimage-f1chxn").image_id


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize(("case", "trusted"), [
    ("REQUESTS_CA_BUNDLE", True), ("CURL_CA_BUNDLE", True), ("certifi", True), ("SSL_CERT_FILE", False),
    ("nothing", False), ("session.verify", True), ("session.verify=False", True),
])
def test_trust_is_decided_as_requests_post_decides_it(
    case: str, trusted: bool, tls_server: str, certificate: tuple[Path, Path], clean_environment: pytest.MonkeyPatch
) -> None:
    """The CA is only where the case puts it; ours and requests' decisions are the same, and as documented."""
    cert = str(certificate[0])
    session = None
    if case in ENVIRONMENT:
        clean_environment.setenv(case, cert)
    elif case == "certifi":  # the bundle requests uses when nothing else is said (certifi's, at import)
        clean_environment.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", cert)
    elif case.startswith("session.verify"):
        session = requests.Session()
        session.verify = False if case.endswith("False") else cert

    def requests_trusts() -> bool:
        try:
            (session or requests).post(tls_server, data={"Action": "DescribeImage"}, timeout=10)
        except requests.exceptions.SSLError:
            return False
        return True

    def we_trust() -> bool:
        try:
            our_lookup(tls_server, session)
        except ConnectionFailedError as error:
            assert "certificate" in str(error)
            return False
        return True

    assert requests_trusts() is trusted
    assert we_trust() is trusted


def test_a_bad_ca_bundle_path_is_one_sentence_naming_the_variable(clean_environment: pytest.MonkeyPatch,
                                                                 tls_server: str) -> None:
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    with pytest.raises(ConnectionFailedError) as caught:
        our_lookup(tls_server)
    assert str(caught.value) == (
        "UCloud API DescribeImage was not sent: REQUESTS_CA_BUNDLE names '/nonexistent/ca.pem', which is not a CA "
        "bundle file or directory; fix or unset it."
    )


def test_a_socks_proxy_without_pysocks_is_one_sentence_naming_the_variable(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    def missing(*args: Any, **kwargs: Any) -> None:  # what requests puts in place when PySocks is not installed
        raise requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.")

    clean_environment.setattr(requests.adapters, "SOCKSProxyManager", missing)
    clean_environment.setenv("ALL_PROXY", "socks5://127.0.0.1:9")
    with pytest.raises(ConnectionFailedError) as caught:
        our_lookup("http://127.0.0.1:9")
    assert str(caught.value) == (
        "UCloud API DescribeImage was not sent: ALL_PROXY names a SOCKS proxy, which needs the PySocks package "
        "(pip install 'requests[socks]'); install it or unset it."
    )


class LoopbackServer:
    """A threading HTTP server on loopback, serving ``handler`` until ``close()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Proxy(LoopbackServer):
    """An HTTP proxy on loopback that answers every request itself, recording the request lines."""

    def __init__(self) -> None:
        proxy = self
        self.lines: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.lines.append(self.requestline)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ANSWER)))
                self.end_headers()
                self.wfile.write(ANSWER)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.url = f"http://{self.address}"


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    started = Proxy()
    yield started
    started.close()


TARGET = "http://127.0.0.1:9"  # the discard port: nothing listens, so only a proxy can answer


@pytest.mark.parametrize("environment", [
    {"HTTP_PROXY": "{proxy}"}, {"http_proxy": "{proxy}"}, {"ALL_PROXY": "{proxy}"}, {"all_proxy": "{proxy}"},
    {"HTTPS_PROXY": "{proxy}"},
    *({"HTTP_PROXY": "{proxy}", variable: value} for variable in ("NO_PROXY", "no_proxy")
      for value in ("127.0.0.1", "*", "127.0.0.1:9", "127.0.0.0/8", "localhost,127.0.0.1", "example.com", ".0.0.1",
                    "127.0.0.1:8")),
], ids=repr)
def test_the_route_is_decided_as_requests_post_decides_it(
    environment: dict[str, str], proxy: Proxy, clean_environment: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        clean_environment.setenv(name, value.format(proxy=proxy.url))

    def through_proxy(call: Any) -> bool:
        before = len(proxy.lines)
        try:
            call()
        except (requests.ConnectionError, TransportError):
            return False
        assert len(proxy.lines) == before + 1 and proxy.lines[-1].startswith(f"POST {TARGET}/")
        return True

    theirs = through_proxy(lambda: requests.post(TARGET, data={"Action": "DescribeImage"}, timeout=5))
    assert through_proxy(lambda: our_lookup(TARGET)) is theirs


def test_a_changed_environment_changes_the_route_of_a_client_in_use(
    proxy: Proxy, clean_environment: pytest.MonkeyPatch
) -> None:
    """The route is kept per URL only while the variables requests reads stay the same."""
    settings = Settings(public_key="pk", private_key="sk", region="cn-bj2", base_url=TARGET, timeout=5)
    with Client(settings, retry=ONCE) as client:
        with pytest.raises(ConnectionFailedError, match="connection refused"):
            lookup_images(client=client, image_id="uimage-f1chxn")
        clean_environment.setenv("HTTP_PROXY", proxy.url)
        assert lookup_images(client=client, image_id="uimage-f1chxn").image_id == "uimage-f1chxn"
        clean_environment.setenv("NO_PROXY", "127.0.0.1")
        client.clear_memo()
        with pytest.raises(ConnectionFailedError, match="connection refused"):
            lookup_images(client=client, image_id="uimage-f1chxn")
    assert len(proxy.lines) == 1


class Tunnel(LoopbackServer):
    """An HTTP proxy on loopback that only tunnels (``CONNECT``), recording the request lines and the
    ``Proxy-Authorization`` each came with."""

    def __init__(self) -> None:
        tunnel = self
        self.lines: list[tuple[str, str | None]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_CONNECT(self) -> None:
                tunnel.lines.append((self.requestline, self.headers.get("Proxy-Authorization")))
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                ends = [self.connection, upstream]
                try:
                    while True:
                        ready, _, _ = select.select(ends, [], [], 5)
                        if not ready:
                            return
                        for end in ready:
                            data = end.recv(65536)
                            if not data:
                                return
                            (upstream if end is self.connection else self.connection).sendall(data)
                finally:
                    upstream.close()
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


def test_https_through_a_proxy_tunnels_with_its_credentials_as_requests_post_does(
    tls_server: str, certificate: tuple[Path, Path], clean_environment: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY with credentials: the request is tunnelled (CONNECT, Proxy-Authorization from the URL's
    user and password), and the server's certificate is checked against the CA bundle at the far end."""
    tunnel = Tunnel()
    try:
        clean_environment.setenv("HTTPS_PROXY", f"http://user:secret@{tunnel.address}")
        clean_environment.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        requests.post(tls_server, data={"Action": "DescribeImage"}, timeout=5).raise_for_status()
        theirs = list(tunnel.lines)
        assert our_lookup(tls_server) == "uimage-f1chxn"
        host = tls_server.removeprefix("https://")
        assert theirs == [(f"CONNECT {host} HTTP/1.0", "Basic dXNlcjpzZWNyZXQ=")]
        assert tunnel.lines[1:] == theirs
    finally:
        tunnel.close()
