"""Certificates for a `dockerd --tlsverify` endpoint: a CA, a server cert, a client cert.

Made with `cryptography` (paramiko already depends on it), in the file names Docker's
clients expect: ``ca.pem``, ``cert.pem``, ``key.pem`` (``DOCKER_CERT_PATH``).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: Any, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(cert: Any, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_tls_pair(server_dir: Path, client_dir: Path, address: str) -> None:
    """A CA, a server cert for ``address`` (an IP) and a client cert, each dir with ca.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2))
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-tui test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage: Any, san: Any | None) -> tuple[Any, Any]:
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_key, server_cert = leaf(
        address,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
    )
    client_key, client_cert = leaf("llm-tui test client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    for folder, key, cert in (
        (server_dir, server_key, server_cert),
        (client_dir, client_key, client_cert),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        _write_cert(ca, folder / "ca.pem")
        _write_cert(cert, folder / "cert.pem")
        _write_key(key, folder / "key.pem")
