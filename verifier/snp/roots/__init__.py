"""AMD's SEV-SNP trust anchors, embedded as package data and pinned by SHA-256 fingerprint.

Each ``<product>_vcek_chain.pem`` is the KDS ``/vcek/v1/<product>/cert_chain`` bundle (ASK,
then ARK) and each ``<product>_vlek_chain.pem`` the ``/vlek/v1/<product>/cert_chain`` bundle
(ASVK, then ARK), as published by AMD (copied from tests/vectors/snp/amd-roots, see its
MANIFEST). The pins below are the SHA-256 of each certificate's DER; a file that does not
match its pin is a TrustConfigError at load time, never a silent substitution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from cryptography import x509

from attest.certificates import load_pem_bundle
from attest.formats.snp_report import GENOA, MILAN, PRODUCTS, TURIN
from transparency_log.common.errors import TrustConfigError
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root

# product -> (ARK, ASK, ASVK) SHA-256 fingerprints of the DER encodings.
PINS: dict[str, tuple[str, str, str]] = {
    MILAN: ("69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
            "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5"),
    GENOA: ("4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
            "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
            "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372"),
    TURIN: ("1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
            "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
            "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c"),
}


@dataclass(frozen=True)
class AmdProductRoots:
    """The trust anchor of one product: the pinned ARK and the intermediates it issued.

    ``simulated`` marks simulator roots (attest.simulate.snp); they are trusted only when a
    caller passes them explicitly.
    """

    product: str
    ark: PinnedRoot
    ask: x509.Certificate
    asvk: x509.Certificate | None
    simulated: bool = False

    @cached_property
    def _embedded(self) -> dict[str, tuple[bytes, x509.Certificate]]:
        """role -> (SHA-256 of the DER, certificate) of the pinned ARK and embedded ASK/ASVK."""
        out = {"ARK": (self.ark.fingerprint, self.ark.certificate),
               "ASK": (fingerprint(self.ask), self.ask)}
        if self.asvk is not None:
            out["ASVK"] = (fingerprint(self.asvk), self.asvk)
        return out

    @cached_property
    def intermediate_fingerprints(self) -> frozenset[bytes]:
        """SHA-256 of the embedded ASK and ASVK: trust configuration like the ARK, so their
        signature by the ARK is verified once per process (verifier/x509chain.py)."""
        return frozenset(fp for role, (fp, _) in self._embedded.items() if role != "ARK")

    @cached_property
    def _embedded_der(self) -> dict[str, tuple[bytes, x509.Certificate]]:
        """role -> (DER, certificate) of the pinned ARK and embedded ASK/ASVK."""
        from cryptography.hazmat.primitives.serialization import Encoding

        return {role: (cert.public_bytes(Encoding.DER), cert)
                for role, (_, cert) in self._embedded.items()}

    def embedded(self, role: str, der: bytes) -> x509.Certificate | None:
        """The embedded ASK/ASVK or the pinned ARK when ``der`` is byte for byte its DER (the
        node sent an identical copy: no need to parse it again), else None."""
        own, cert = self._embedded_der.get(role, (b"", None))
        return cert if cert is not None and own == der else None


def _pinned(cert: x509.Certificate, pin: str, name: str) -> x509.Certificate:
    got = fingerprint(cert)
    if got.hex() != pin:
        raise TrustConfigError("trust.root.pin", f"embedded {name} does not match its pin",
                               field=name, got=got, want=pin)
    return cert


def _bundle(name: str) -> list[x509.Certificate]:
    data = resources.files(__name__).joinpath(name).read_bytes()
    return load_pem_bundle(data, check="trust.root", field=name)


@cache
def amd_roots() -> dict[str, AmdProductRoots]:
    """The production trust anchors for Milan, Genoa and Turin, keyed by product name."""
    from cryptography.hazmat.primitives.serialization import Encoding

    out = {}
    for product in PRODUCTS:
        ark_pin, ask_pin, asvk_pin = PINS[product]
        ask, ark = _bundle(f"{product.lower()}_vcek_chain.pem")
        asvk, ark2 = _bundle(f"{product.lower()}_vlek_chain.pem")
        root = pinned_root(f"ARK-{product}", ark.public_bytes(Encoding.DER), ark_pin)
        _pinned(ark2, ark_pin, f"ARK-{product} (VLEK bundle)")
        out[product] = AmdProductRoots(
            product, root, _pinned(ask, ask_pin, f"ASK-{product}"),
            _pinned(asvk, asvk_pin, f"ASVK-{product}"))
    return out
