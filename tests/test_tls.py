"""HTTPS, the real API's scheme, end to end: a TLS server on loopback with a certificate the test makes.

The transport's connection classes differ for TLS (the handshake detaches the socket the deadline watches), so
this checks that a lookup over TLS works, that the CA bundle decides trust, and that a trickling TLS server is
cut off at the request's deadline as a plain one is.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import TransportError, lookup_images
from pulumi_ucloud_images._catalog import build_catalog

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
