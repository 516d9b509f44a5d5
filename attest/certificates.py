"""The one certificate and CRL loader (RFC 5280): PEM or DER, parsed once per exact bytes,
every lazily decoded field read at load, and every refusal a FormatError naming the check id
and the field given by the caller (never a ValueError escaping later).

Used by the node (attest.collateral) and the verifier (verifier.x509chain and the vendor
packages). ``cryptography`` decodes names, validity, extensions and keys on first access;
reading them here makes a malformed field fail where the certificate enters the program.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from attest.formats import der
from transparency_log.common.errors import FormatError
from transparency_log.common.parse_cache import ObjectMemo

__all__ = [
    "LOADER_ERRORS",
    "PARSE_MEMO_SIZE",
    "CertificateSpans",
    "certificate_spans",
    "clear_parse_memos",
    "der_of",
    "load_certificate",
    "load_certificates",
    "load_crl",
    "load_pem_bundle",
    "name_text",
    "register_parse_memo",
    "register_trusted",
]

T = TypeVar("T")

LOADER_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
"""What ``cryptography``'s X.509 loaders raise on malformed input (an unknown version number is
``InvalidVersion``, not a ValueError; a repeated extension ``DuplicateExtension``)."""


PARSE_MEMO_SIZE = 256
"""How many parsed objects (certificates, bundles, CRLs) are kept by their exact bytes: parsing
is a pure function of the bytes and the parsed objects are immutable, so they are parsed once."""


_REGISTERED_MEMOS: list[Callable[[], None]] = []


def register_parse_memo(clear: Callable[[], None]) -> None:
    """Have :func:`clear_parse_memos` also call ``clear``: another module's parse-once memo
    (e.g. the verifier's decoded bundles), so a cold run forgets it too."""
    if clear not in _REGISTERED_MEMOS:
        _REGISTERED_MEMOS.append(clear)


def clear_parse_memos() -> None:
    """Forget every parsed object (for tests that replace the loaders, and cold benches)."""
    for memo in (_load_certificate, _load_pem_bundle, _load_crl, _checked_certificate,
                 _name_text):
        memo.cache_clear()
    _DER.clear()
    for clear in tuple(_REGISTERED_MEMOS):
        clear()


class _ParseFailure(Exception):
    """A refusal of a bytes-keyed loader, turned into the caller's FormatError by
    :func:`_as_format_error` (a memo keyed by the bytes alone serves every caller; failures
    are never memoized, so each caller gets its own check id and field)."""

    def __init__(self, message: str, suffix: str = "") -> None:
        super().__init__(message)
        self.message, self.suffix = message, suffix


def _as_format_error(load: Callable[[bytes], T], data: bytes, *, check: str, field: str) -> T:
    try:
        return load(bytes(data))
    except _ParseFailure as err:
        raise FormatError(check, err.message, field=field + err.suffix) from None


def _load_pem_or_der(data: bytes, pem: Callable[[bytes], T], der: Callable[[bytes], T], *,
                     what: str) -> T:
    """One PEM or DER object; loader warnings silenced, a refusal is a _ParseFailure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pem(data) if data.lstrip().startswith(b"-----BEGIN") else der(data)
    except LOADER_ERRORS as err:
        raise _ParseFailure(f"{what} does not parse: {err}") from None


def load_certificate(data: bytes, *, check: str, field: str) -> x509.Certificate:
    """Load one PEM or DER certificate; a refusal of the loader is a FormatError, not a crash.

    Warnings from the loader (AMD VCEKs have non-positive serial numbers, which recent
    ``cryptography`` releases warn about) are silenced here: the certificate is still checked
    in full by the chain verification. Parsed once per bytes.
    """
    return _as_format_error(_load_certificate, data, check=check, field=field)


_NAME_READS = {"subject": lambda c: c.subject, "issuer": lambda c: c.issuer}


@lru_cache(maxsize=4 * PARSE_MEMO_SIZE)
def _name_text(cert: x509.Certificate, which: str) -> str:
    """The RFC 4514 text of the certificate's subject or issuer, built once per certificate
    (certificates hash and compare by their DER)."""
    return _NAME_READS[which](cert).rfc4514_string()  # type: ignore[no-any-return]


def name_text(cert: x509.Certificate, which: str = "subject") -> str:
    """The certificate's ``subject`` or ``issuer`` as RFC 4514 text (memoized; a certificate
    loaded here had both names decoded at load, so this meets no malformed name). The texts
    of a registered trust-configuration certificate are built once, at registration."""
    trusted = _TRUSTED.get(cert.signature)
    if trusted is not None and trusted[0] is cert:
        return trusted[1] if which == "subject" else trusted[2]
    return _name_text(cert, which)


@lru_cache(maxsize=4 * PARSE_MEMO_SIZE)
def _checked_certificate(cert: x509.Certificate,
                         plain: frozenset[str] = frozenset()) -> x509.Certificate:
    """cryptography decodes a certificate's names, validity, extensions and key lazily, on
    first use: read them all now, so a malformed field is refused here (a _ParseFailure naming
    it) and never a ValueError escaping from a later check (RFC 5280 §4.1).

    ``plain``: the names (``"subject"``, ``"issuer"``) that :func:`_plain_names` found in the
    DER to be plain, which cryptography decodes without fail whenever they are read; they are
    left to be decoded when first needed (building the Python objects of a Name is the
    costliest read here). Every other field is read now.

    Once per certificate: the first instance of a DER is returned for every later equal one,
    so what it decoded (cryptography keeps a decoded name, extension list and key on the
    object) is reused by every chain, bundle and check that meets the same certificate."""
    reads: dict[str, Callable[[], object]] = {  # the RFC 4514 texts are built when needed
        "subject": lambda: cert.subject,
        "issuer": lambda: cert.issuer,
        "validity": lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc),
        "signatureAlgorithm": lambda: cert.signature_algorithm_oid,
        "extensions": lambda: list(cert.extensions),
        "subjectPublicKeyInfo": cert.public_key,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, read in reads.items():
            if name in plain:
                continue
            try:
                read()
            except LOADER_ERRORS as err:
                raise _ParseFailure(f"certificate field does not parse: {err}",
                                    f".{name}") from None
    return cert


_PLAIN_STRINGS = frozenset({0x0C, 0x13})  # UTF8String, PrintableString (X.680 §41)
try:  # the attribute lengths cryptography enforces (OID contents -> (min, max))
    from cryptography.x509.name import _NAMEOID_LENGTH_LIMIT
except ImportError:  # a release without this table: no Name counts as plain
    _NAMEOID_LENGTH_LIMIT = None
_LENGTH_LIMITS = (None if _NAMEOID_LENGTH_LIMIT is None else
                  {der.encode_oid(oid.dotted_string): limits
                   for oid, limits in _NAMEOID_LENGTH_LIMIT.items()})
_NO_PLAIN: frozenset[str] = frozenset()
_BOTH_PLAIN = frozenset({"subject", "issuer"})


def _plain_names(data: bytes) -> frozenset[str]:
    """Which of the certificate's issuer and subject Names (RFC 5280 §4.1.2.4, §4.1.2.6) in
    its DER ``data`` are plain: every RelativeDistinguishedName one attribute whose value is a
    UTF8String or PrintableString of valid UTF-8 shorter than 128 bytes, within the length
    cryptography allows for its type. cryptography builds such a Name without fail (it refuses
    only long-form or unknown tags, text that does not decode, an oversized attribute, a
    BitString other than x500UniqueIdentifier and repeated attributes in one RDN; the
    structure and OIDs it validated when it loaded the certificate); any other Name is decoded
    at load as before. Never raises: a DER that does not split is simply not plain."""
    spans = certificate_spans(data) if _LENGTH_LIMITS is not None else None
    if spans is None:
        return _NO_PLAIN
    try:
        return frozenset(name for name, tlv in (("issuer", spans.issuer),
                                                ("subject", spans.subject))
                         if _plain_name(tlv[_tlv(tlv, 0)[1]:]))
    except (ValueError, IndexError):
        return _NO_PLAIN


class CertificateSpans(NamedTuple):
    """Parts of a certificate's DER, each a whole TLV (RFC 5280 §4.1): the signed
    TBSCertificate, its inner and the outer signatureAlgorithm, the issuer and subject."""

    tbs: bytes
    inner_alg: bytes
    outer_alg: bytes
    issuer: bytes
    subject: bytes


def certificate_spans(data: bytes) -> CertificateSpans | None:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } and
    TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
    validity, subject, ... } (RFC 5280 §4.1), split from a DER that cryptography has loaded
    (so already checked as DER); None when it does not split so."""
    try:
        _, body, _ = _tlv(data, 0)
        _, tbs_body, tbs_end = _tlv(data, body)
        _, _, alg_end = _tlv(data, tbs_end)
        spans: list[bytes] = []
        pos = tbs_body
        while len(spans) < 6:  # version (b"" for v1), serialNumber, ..., subject
            tag, _, end = _tlv(data, pos)
            if not spans and tag != 0xA0:
                spans.append(b"")
            spans.append(data[pos:end])
            pos = end
    except (ValueError, IndexError):
        return None
    _, _, inner_alg, issuer, _, subject = spans
    return CertificateSpans(data[body:tbs_end], inner_alg, data[tbs_end:alg_end], issuer,
                            subject)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the contents, end) of the DER element at ``pos`` (X.690 §8.1.2-8.1.3:
    one-byte tags and definite lengths, as in a certificate cryptography has loaded)."""
    first = data[pos + 1]
    start = pos + 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0:
            raise ValueError("indefinite length")
        length = int.from_bytes(data[start:start + n], "big")
        start += n
    else:
        length = first
    end = start + length
    if end > len(data):
        raise ValueError("element runs past the certificate")
    return data[pos], start, end


def _plain_name(b: bytes) -> bool:
    """:func:`_plain_names` for one Name's contents (a SEQUENCE OF RDN), every element of an
    RDN with a one-byte length: SET { SEQUENCE { OID, value } }."""
    pos, end = 0, len(b)
    while pos < end:
        rdn_end = pos + 2 + b[pos + 1]
        if b[pos] != 0x31 or b[pos + 1] > 0x7F or b[pos + 2] != 0x30 \
                or b[pos + 3] != rdn_end - pos - 4 or b[pos + 4] != der.TAG_OID \
                or b[pos + 5] > 0x7F:
            return False
        at = pos + 6 + b[pos + 5]  # the value, after the OID
        size = b[at + 1]
        if b[at] not in _PLAIN_STRINGS or size > 0x7F or at + 2 + size != rdn_end \
                or rdn_end > end:
            return False
        try:
            b[at + 2:rdn_end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        low, high = _LENGTH_LIMITS.get(b[pos + 6:at], (0, size))  # type: ignore[union-attr]
        if not low <= size <= high:
            return False
        pos = rdn_end
    return True


_TRUSTED: dict[bytes, tuple[x509.Certificate, str, str]] = {}
_TRUSTED_PEM: dict[bytes, x509.Certificate] = {}
"""A registered certificate by its exact PEM block (RFC 7468 §2: BEGIN line, its canonical
base64 DER in 64-character lines, END line, ``\n`` line ends; no trailing newline): a block
byte-identical to it decodes to exactly its DER, so it is that object without being
decoded again (:func:`_split_trusted_blocks`)."""
_TRUSTED_SIZE = 64
_TRUSTED_LOCK = threading.Lock()


def register_trusted(cert: x509.Certificate) -> None:
    """Remember a certificate of the trust configuration (a pinned root or embedded
    intermediate, loaded and checked here when the verifier's trust store was built): a
    certificate with the same DER met later in a chain or bundle is this object, whose
    fields are already decoded and checked, and whose name texts are built here. Bounded
    (the oldest registration is forgotten first); only an exact DER match is ever
    substituted (:func:`_known`)."""
    entry = (cert, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())
    _remember_der(cert, cert.public_bytes(Encoding.DER))
    pem = cert.public_bytes(Encoding.PEM).rstrip(b"\n")
    with _TRUSTED_LOCK:  # lookups are plain dict reads (atomic); changes are serialized
        _TRUSTED[cert.signature] = entry
        _TRUSTED_PEM[pem] = cert
        while len(_TRUSTED) > _TRUSTED_SIZE:
            del _TRUSTED[next(iter(_TRUSTED))]
        while len(_TRUSTED_PEM) > _TRUSTED_SIZE:
            del _TRUSTED_PEM[next(iter(_TRUSTED_PEM))]


def _known(cert: x509.Certificate, data: bytes | None = None) -> x509.Certificate:
    """The registered trust-configuration object equal to ``cert`` (looked up by its
    signature bytes, confirmed by DER equality), else ``cert`` checked once by
    :func:`_checked_certificate`. ``data``: the certificate's DER when the caller has it
    (else it is encoded again), for :func:`_plain_names`."""
    trusted = _TRUSTED.get(cert.signature)
    if trusted is not None and trusted[0] == cert:
        return trusted[0]
    der = data if data is not None else cert.public_bytes(Encoding.DER)
    checked = _checked_certificate(cert, _plain_names(der))
    _remember_der(checked, der)
    return checked


_DER: ObjectMemo[x509.Certificate, bytes] = ObjectMemo(
    lambda cert: cert.public_bytes(Encoding.DER), 4 * PARSE_MEMO_SIZE)
der_of = _DER
"""``der_of(cert)``: the certificate's DER (RFC 5280 §4.1), the bytes it was loaded from when
it was loaded here, else encoded once (cryptography re-encodes on every ``public_bytes``,
which costs about two certificate loads)."""
_remember_der = _DER.put


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_certificate(data: bytes) -> x509.Certificate:
    cert = _load_pem_or_der(data, x509.load_pem_x509_certificate,
                            x509.load_der_x509_certificate, what="certificate")
    # DER is loaded only when it is the whole certificate (cryptography refuses trailing data)
    return _known(cert, None if data.lstrip().startswith(b"-----BEGIN") else data)


def load_pem_bundle(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """Load a PEM bundle of one or more certificates, in order (parsed once per bytes,
    whichever check asks)."""
    return list(_as_format_error(_load_pem_bundle, data, check=check, field=field))


_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----\n"
_PEM_END = b"\n-----END CERTIFICATE-----"


def _split_trusted_blocks(data: bytes) -> list[x509.Certificate | bytes] | None:
    """The bundle as its certificate blocks in order (RFC 7468 §2), each a registered
    trust-configuration certificate whose PEM block it is byte for byte (its base64 is the
    canonical encoding of that DER, so it decodes to exactly it), else the block's own bytes
    (decoded as any other). None unless the bundle is only such blocks separated by
    whitespace: any other text is left to the full decoder and its checks."""
    out: list[x509.Certificate | bytes] = []
    pos = 0
    while True:
        start = data.find(_PEM_BEGIN, pos)
        if start < 0:
            return out if out and not data[pos:].strip() else None
        if data[pos:start].strip():
            return None
        stop = data.find(_PEM_END, start)
        if stop < 0:
            return None
        pos = stop + len(_PEM_END)
        block = data[start:pos]
        out.append(_TRUSTED_PEM.get(block, block))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_pem_bundle(data: bytes) -> tuple[x509.Certificate, ...]:
    # A block byte-identical to a registered trust certificate's PEM is that object; the
    # other blocks (or the whole text, when it is not only whole blocks) are decoded.
    blocks = _split_trusted_blocks(data) if _TRUSTED_PEM else None
    certs: list[x509.Certificate] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for piece in [data] if blocks is None else blocks:
                if isinstance(piece, bytes):
                    certs.extend(x509.load_pem_x509_certificates(piece))
                else:
                    certs.append(piece)
    except LOADER_ERRORS as err:
        raise _ParseFailure(f"certificate bundle does not parse: {err}") from None
    # cryptography skips text that is not a whole PEM block: a block cut off (or a stray
    # BEGIN line) must not pass as a shorter bundle.
    begins = data.count(b"-----BEGIN ")
    if begins != len(certs) or data.count(b"-----END ") != len(certs):
        raise _ParseFailure(f"certificate bundle has {begins} PEM block(s) but "
                            f"{len(certs)} whole certificate(s)")
    out = []
    for i, cert in enumerate(certs):
        try:
            out.append(_known(cert))  # a registered trust certificate is itself at once
        except _ParseFailure as err:
            raise _ParseFailure(err.message, f"[{i}]{err.suffix}") from None
    return tuple(out)


def load_crl(data: bytes, *, check: str, field: str) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL (RFC 5280 §5); a refusal of the loader is a FormatError. Parsed
    once per bytes."""
    return _as_format_error(_load_crl, data, check=check, field=field)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    crl = _load_pem_or_der(data, x509.load_pem_x509_crl, x509.load_der_x509_crl, what="CRL")
    reads: dict[str, Callable[[], object]] = {  # decoded lazily: read now (RFC 5280 §5.1)
        "issuer": lambda: crl.issuer,
        "thisUpdate": lambda: (crl.last_update_utc, crl.next_update_utc),
        "signatureAlgorithm": lambda: crl.signature_algorithm_oid,
        "revokedCertificates": lambda: [(r.serial_number, r.revocation_date_utc) for r in crl],
        "extensions": lambda: list(crl.extensions),
    }
    for name, read in reads.items():
        try:
            read()
        except LOADER_ERRORS as err:
            raise _ParseFailure(f"CRL field does not parse: {err}", f".{name}") from None
    return crl


def load_certificates(data: bytes, *, check: str, field: str) -> list[x509.Certificate]:
    """A PEM bundle (one or more certificates, in order) or one DER certificate."""
    if bytes(data).lstrip().startswith(b"-----BEGIN"):
        return load_pem_bundle(data, check=check, field=field)
    return [load_certificate(data, check=check, field=field)]
