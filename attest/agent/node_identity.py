"""The node's TLS identity: an ECDSA P-256 key made at boot and a self-signed certificate.

The evidence bundle binds the key (``node_key`` = its DER SubjectPublicKeyInfo; DESIGN.md
"Binding"), so the certificate needs no CA: a client pins the key it verified in the bundle
(``verifier.requests.AttestedSession``). A fresh key per boot means a key never outlives
the measured boot that bound it; the private key is written 0600 for uvicorn and never
leaves the node.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["NodeIdentity", "make_node_identity"]


@dataclass(frozen=True)
class NodeIdentity:
    key_pem: bytes
    cert_pem: bytes
    node_key: bytes  # DER SubjectPublicKeyInfo: the bundle's node_key

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``node-key.pem`` (0600, replaced) and ``node-cert.pem``; returns the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "node-key.pem", directory / "node-cert.pem"
        tmp = key_path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        os.replace(tmp, key_path)
        cert_path.write_bytes(self.cert_pem)
        return key_path, cert_path


def make_node_identity(now: datetime, hostnames: tuple[str, ...] = ("localhost",),
                       ) -> NodeIdentity:
    """A fresh key and a self-signed certificate valid from ``now`` for 30 days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attestlog node"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "attestlog")])
    sans: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return NodeIdentity(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
        key.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
