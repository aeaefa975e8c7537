"""HTTPS with the ``tls`` extra, a plain usage error without it, and no token in any log line."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python import usage
from twisted.web.client import Agent, ResponseNeverReceived
from twisted.web.http import combinedLogFormatter
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from mitelacd import tap
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.state import FloorState
from mitelacd.logs import render
from mitelacd.testing import Twistd, capture_log, injected_site
from mitelacd.web.accesslog import redact_url, redacted_log_formatter
from mitelacd.web.endpoint import check_endpoint, is_tls, tls_missing
from mitelacd.web.resources import Served, WebService, WebSettings

ROOT = Path(__file__).parent.parent


# Certificates made for the test -------------------------------------------------


def self_signed(folder: Path, name: str) -> tuple[str, bytes]:
    """A key and a self-signed certificate for 127.0.0.1 in ``folder``: the endpoint and the PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mitelacd test {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file.write_bytes(pem)
    return f"ssl:0:privateKey={key_file}:certKey={cert_file}:interface=127.0.0.1", pem


@implementer(IPolicyForHTTPS)
class TrustOnly:
    """A client that trusts one certificate, and checks the address it connects to against it."""

    def __init__(self, pem: bytes) -> None:
        self._root = Certificate.loadPEM(pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._root)


def client(pem: bytes) -> HTTPClient:
    return HTTPClient(Agent(reactor, contextFactory=TrustOnly(pem)))


# TLS without the extra ---------------------------------------------------------


@pytest.mark.parametrize("module", ["OpenSSL", "service_identity"])
def test_ssl_without_the_tls_extra_is_a_usage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    description, _ = self_signed(tmp_path, "board")
    assert check_endpoint(description) == description
    # As if the package were not installed.
    monkeypatch.setitem(sys.modules, module, None)
    assert tls_missing() == [module]
    with pytest.raises(ValueError) as raised:
        check_endpoint(description)
    message = str(raised.value)
    assert message == (
        f"ssl: endpoints need TLS support, and {module} is not installed:"
        " pip install 'mitelacd[tls]'"
    )
    with pytest.raises(usage.UsageError, match=r"pip install 'mitelacd\[tls\]'"):
        tap.Options().parseOptions(
            ["--host", "h", "--file", str(tmp_path / "d.json"), "--http", description]
        )
    # Plain HTTP does not need it.
    assert check_endpoint("tcp:0:interface=127.0.0.1")


def test_twistd_without_the_tls_extra_exits_64_naming_it(tmp_path: Path) -> None:
    description, _ = self_signed(tmp_path, "board")
    blocked = injected_site(tmp_path / "site", 'import sys\nsys.modules["OpenSSL"] = None\n')
    twistd = Twistd(
        "mitelacd",
        "--simulate",
        "--file",
        str(tmp_path / "mitel_data.json"),
        "--http",
        description,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{blocked}{os.pathsep}{ROOT}"},
    )
    assert twistd.process.wait(timeout=60) == tap.EXIT_USAGE
    twistd.wait_for(r"OpenSSL is not installed: pip install 'mitelacd\[tls\]'", timeout=10)
    assert not [line for line in twistd.seen if "Traceback" in line]


# TLS with it -------------------------------------------------------------------


def test_the_tls_extra_is_declared() -> None:
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    assert "twisted[tls]" in extras["tls"].split()
    # The tests run the TLS listener, so the test extra brings TLS too.
    assert "twisted[tls]" in extras["test"].split()


# Twisted's TLS hands pyOpenSSL objects to pyOpenSSL, which now prefers cryptography's.
@pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_https_with_a_verified_certificate_and_the_log_says_https(tmp_path: Path) -> None:
    description, pem = self_signed(tmp_path, "board")
    _, other_pem = self_signed(tmp_path, "other")
    assert is_tls(description) and not is_tls("tcp:8443")
    floor = FloorState(reactor, stale_after=60)
    service = WebService(description, Served(floor, FloorDocuments(floor)), reactor)
    with capture_log("mitelacd.web.resources") as log:
        service.startService()
    try:
        assert service.port is not None
        port = service.port.getHost().port  # type: ignore[attr-defined]
        assert log.lines() == [f"wall board and API at https://127.0.0.1:{port}/"]
        response = (
            await client(pem).get(f"https://127.0.0.1:{port}/healthz").addTimeout(10, reactor)
        )
        assert response.code == 503
        assert json.loads(await response.content())["reason"] == "never connected"
        # A client that does not trust this certificate gets nothing.
        with pytest.raises(ResponseNeverReceived):
            await client(other_pem).get(f"https://127.0.0.1:{port}/healthz").addTimeout(10, reactor)
        # And plain HTTP on the TLS port gets no answer either.
        with pytest.raises(ResponseNeverReceived):
            await treq.get(f"http://127.0.0.1:{port}/healthz", persistent=False).addTimeout(
                10, reactor
            )
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_twistd_serves_https(tmp_path: Path) -> None:
    description, pem = self_signed(tmp_path, "board")
    twistd = Twistd(
        "mitelacd",
        "--simulate",
        "--file",
        str(tmp_path / "mitel_data.json"),
        "--http",
        description,
        cwd=tmp_path,
        pythonpath=ROOT,
    )
    try:
        port = int(twistd.wait_for(r"wall board and API at https://127\.0\.0\.1:(\d+)/").group(1))
        response = (
            await client(pem).get(f"https://127.0.0.1:{port}/api/v1/feed").addTimeout(10, reactor)
        )
        assert response.code == 200
        assert "feed" in json.loads(await response.content())
    finally:
        twistd.stop_cleanly()


# The token in no log line ------------------------------------------------------


@pytest.mark.parametrize(
    "url, logged",
    [
        (b"/api/v1/events?token=s3cret", b"/api/v1/events?token=<redacted>"),
        (b"/?full=1&token=s3cret;x=2", b"/?full=1&token=<redacted>;x=2"),
        (b"/?token=s3cret&token=again", b"/?token=<redacted>&token=<redacted>"),
        (b"/?%74oken=s3cret", b"/?%74oken=<redacted>"),
        (b"/?TOKEN=s3cret", b"/?TOKEN=<redacted>"),
        (b"http://h:8080/?token=s3cret#top", b"http://h:8080/?token=<redacted>#top"),
        (b"/?tokens=1&a=token=b", b"/?tokens=1&a=token=b"),
        (b"/?token", b"/?token"),
        (b"/api/v1/state", b"/api/v1/state"),
    ],
)
def test_redact_url(url: bytes, logged: bytes) -> None:
    assert redact_url(url) == logged


@pytest.mark.parametrize(
    ("uri", "referrer", "line"),
    [
        # Nothing to take out: the line is Twisted's own.
        (b"/mitel_data.json", None, '"GET /mitel_data.json HTTP/1.1" 200 12 "-" "board"'),
        (b"/mitel_data.json", b"http://h/", '"GET /mitel_data.json HTTP/1.1" 200 12 "http://h/"'),
        # The page's URL, token and all, as the referrer of a request without a query.
        (
            b"/mitel_data.json",
            b"http://h/?token=s3cret",
            '"GET /mitel_data.json HTTP/1.1" 200 12 "http://h/?token=<redacted>"',
        ),
        (b"/?token=s3cret", None, '"GET /?token=<redacted> HTTP/1.1" 200 12 "-"'),
    ],
)
def test_the_access_log_line(uri: bytes, referrer: bytes | None, line: str) -> None:
    request: Any = DummyRequest([b""])
    request.method = b"GET"
    request.uri = uri
    request.clientproto = b"HTTP/1.1"
    request.code = 200
    request.sentLength = 12
    request.requestHeaders.setRawHeaders(b"user-agent", [b"board"])
    if referrer is not None:
        request.requestHeaders.setRawHeaders(b"referer", [referrer])
    logged = redacted_log_formatter("[t]", request)
    assert line in logged
    assert "s3cret" not in logged
    if b"?" not in uri + (referrer or b""):
        assert logged == combinedLogFormatter("[t]", request)


@pytest_twisted.ensureDeferred
async def test_the_access_log_never_holds_the_token() -> None:
    secret = "s3cret-in-the-url"
    floor = FloorState(reactor, stale_after=60)
    settings = WebSettings(token=secret, access_log=True)
    service = WebService(
        "tcp:0:interface=127.0.0.1", Served(floor, FloorDocuments(floor), settings), reactor
    )
    with capture_log(None) as log:
        service.startService()
        try:
            assert service.port is not None
            base = f"http://127.0.0.1:{service.port.getHost().port}"  # type: ignore[attr-defined]
            board = f"{base}/?token={secret}&view=groups"
            referer: dict[bytes | str, bytes | str] = {"Referer": board}
            for path, code in [
                (f"/?token={secret}", 200),
                (f"/api/v1/state?token={secret}", 200),
                (f"/api/v1/nope?%74oken={secret}", 404),
                (f"/mitel_data.json?token=not-{secret}", 401),
            ]:
                response = await treq.get(
                    base + path, headers=referer, persistent=False
                ).addTimeout(10, reactor)
                await response.content()
                assert response.code == code, path
        finally:
            await service.stopService()
    lines = [render(event) for event in log.events]
    access = [line for line in lines if '"GET ' in line]
    assert len(access) == 4, lines
    assert '"GET /api/v1/state?token=<redacted> HTTP/1.1" 200' in access[1]
    assert '"GET /api/v1/nope?%74oken=<redacted> HTTP/1.1" 404' in access[2]
    assert '"GET /mitel_data.json?token=<redacted> HTTP/1.1" 401' in access[3]
    assert all(f'"{base}/?token=<redacted>&view=groups"' in line for line in access)
    # Nowhere: not in the access log, not in any other line.
    assert not [line for line in lines if secret in line]
    assert not [event for event in log.events if secret in repr(event)]
