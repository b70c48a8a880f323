"""A throwaway test PKI: one CA, a server certificate for the gateway's TLS listener, and
client certificates whose URI SAN carries a SPIFFE id (X509-SVID style).

Everything is generated with `cryptography` into a directory the test owns (tmp_path); nothing
touches the system trust store. EC P-256 keys: fast to generate, accepted by Envoy's BoringSSL.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestCa:
    """A self-signed CA that issues server and SPIFFE client certificates into `directory`."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path, name: str = "mcp-policy test CA"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self._name = _name(name)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.dir / "ca.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def _issue(self, stem: str, cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=12))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        pair = CertPair(self.dir / f"{stem}.pem", self.dir / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair

    def server(self, stem: str = "server") -> CertPair:
        """A server certificate for `localhost` and 127.0.0.1."""
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        return self._issue(stem, "localhost", sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def spiffe_client(self, spiffe_id: str, stem: str | None = None) -> CertPair:
        """A client certificate whose only URI SAN is `spiffe_id` (X509-SVID §2)."""
        stem = stem or "client-" + spiffe_id.replace("spiffe://", "").replace("/", "_")
        return self._issue(stem, spiffe_id.rsplit("/", 1)[-1] or "client", [x509.UniformResourceIdentifier(spiffe_id)],
                           ExtendedKeyUsageOID.CLIENT_AUTH)

    def client_context(self, client: CertPair | None) -> ssl.SSLContext:
        """An SSL context trusting this CA and presenting `client` (if any)."""
        ctx = ssl.create_default_context(cafile=str(self.cert_path))
        if client is not None:
            ctx.load_cert_chain(str(client.cert), str(client.key))
        return ctx


def downstream_tls(server: CertPair, ca: TestCa, require_client_certificate: bool = True) -> dict:
    """An Envoy `transport_socket` for a listener filter chain: TLS with client certificates
    verified against `ca`."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": require_client_certificate,
            "common_tls_context": {
                "tls_certificates": [
                    {"certificate_chain": {"filename": str(server.cert)}, "private_key": {"filename": str(server.key)}}
                ],
                "validation_context": {"trusted_ca": {"filename": str(ca.cert_path)}},
            },
        },
    }
