"""The evidence bundle: what a node hands a client (DESIGN.md, "Formats: Evidence bundle").

Byte-level specification: docs/formats.md, "Evidence bundle (CBOR)". In short, a bundle is
one CBOR map (RFC 8949) in **core deterministic encoding** (RFC 8949 §4.2.1: shortest
integer and length heads, definite lengths only, map keys sorted by their encoded bytes, no
tags, no floats) with text keys::

    {"version": 1,
     "nonce": bytes(32..64),                  the client's nonce
     "node_key": bytes,                       the node's TLS/HPKE key, DER SubjectPublicKeyInfo
     "simulated": bool,                       true iff evidence came from attest.simulate
     "gpu_state": {"cc_mode": text, "attached": uint},   node-reported NVIDIA CC state (NVML)
     "evidence": [ITEM, ...],                 CPU item first (at most one), then GPUs by index
     "release": bytes,                        the logged release entry (canonical DSSE JSON)
     "tlog_proof": bytes,                     the C2SP tlog-proof text the log made for it
     "collateral": {NAME: bytes, ...},        stapled vendor collateral, referenced by NAME
     ? "sigstore_bundle": bytes}              optional: the release's Sigstore bundle (JSON)

    ITEM = {"type": "sev-snp", "report": bytes(1184), "certs": {ROLE: DER, ...},
            "collateral": {"crl": NAME}}
         | {"type": "tdx", "quote": bytes, "collateral": {ROLE: NAME, ...}}
         | {"type": "nvidia-gpu", "index": uint, "report": bytes, "cert_chain": bytes (PEM),
            "rims": {"driver": NAME, "vbios": NAME}, "ocsp": [NAME, ...]}

Evidence and the per-device certificates are inline; collateral fetched from vendor services
(CRLs, TCB info, QE identity, RIMs, OCSP responses) is stored once in ``collateral`` and named
from the items (eight GPUs share one driver RIM). Every name an item uses must exist, and
every collateral entry must be used by some item.

The evidence itself is typed opaque bytes here: the SNP/TDX/GPU parsers judge it. This module
is pure (house rule 1): bytes in, frozen dataclass out, or FormatError naming the field path
(``evidence[2].report``). :func:`decode_bundle` accepts only the deterministic encoding
(decode, then re-encode and compare), and :func:`encode_bundle` re-decodes what it writes, so
the node never serves a bundle a client's decoder refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import cbor2

from attest.formats.cbor_scan import scan
from transparency_log.common.errors import FormatError

__all__ = [
    "BUNDLE_VERSION",
    "CC_MODES",
    "EVIDENCE_TYPES",
    "GPU_RIM_ROLES",
    "MAX_BLOB",
    "MAX_BUNDLE_SIZE",
    "MAX_CERT",
    "MAX_COLLATERAL_ENTRIES",
    "MAX_COLLATERAL_NAME",
    "MAX_DATA_ITEMS",
    "MAX_DEPTH",
    "MAX_GPU_ATTACHED",
    "MAX_GPU_CERT_CHAIN",
    "MAX_GPU_INDEX",
    "MAX_GPU_ITEMS",
    "MAX_GPU_REPORT",
    "MAX_NODE_KEY",
    "MAX_NONCE",
    "MAX_OCSP_PER_GPU",
    "MAX_RELEASE",
    "MAX_SIGSTORE_BUNDLE",
    "MAX_TDX_QUOTE",
    "MAX_TLOG_PROOF",
    "MIN_NONCE",
    "SNP_CERT_ROLES",
    "SNP_COLLATERAL_ROLES",
    "SNP_REPORT_SIZE",
    "TDX_COLLATERAL_ROLES",
    "Evidence",
    "EvidenceBundle",
    "GpuEvidence",
    "GpuState",
    "SnpEvidence",
    "TdxEvidence",
    "decode_bundle",
    "deterministic_cbor",
    "encode_bundle",
    "to_cbor_value",
]

BUNDLE_VERSION = 1

# Caps (house rule 2). Sizes in bytes; every blob is also at least 1 byte.
MAX_BUNDLE_SIZE = 4 << 20  # whole encoded bundle
MAX_DATA_ITEMS = 8192  # CBOR data items in a bundle (33 items, 64 collateral: ~1500)
MAX_DEPTH = 8  # container nesting (the schema itself needs 4)
MIN_NONCE = 32
MAX_NONCE = 64
MAX_NODE_KEY = 2048  # DER SPKI; RSA-8192 is ~1.1 KiB
SNP_REPORT_SIZE = 0x4A0  # 1184: SEV-SNP ABI spec (#56860) Table 22, ATTESTATION_REPORT
MAX_CERT = 8192  # one DER certificate (AMD ARK/ASK are RSA-4096, ~1.6 KiB)
MAX_TDX_QUOTE = 65536  # quote v4/v5 with its PCK certificate chain inside
MAX_GPU_REPORT = 32768  # SPDM GET_MEASUREMENTS response + signature (H100: 4117 bytes)
MAX_GPU_CERT_CHAIN = 65536  # PEM device certificate chain
MAX_GPU_ITEMS = 32
MAX_GPU_INDEX = 255
MAX_GPU_ATTACHED = 256
MAX_OCSP_PER_GPU = 8
MAX_RELEASE = 65535  # a log entry (attest.release.statement.MAX_ENTRY_SIZE)
MAX_TLOG_PROOF = 65536
MAX_SIGSTORE_BUNDLE = 65536  # a Sigstore bundle v0.1-v0.3 JSON (the vectors': 5.6-11 KiB)
MAX_COLLATERAL_ENTRIES = 64
MAX_COLLATERAL_NAME = 128
MAX_BLOB = 1 << 20  # one collateral blob (a RIM is ~20 KiB, TCB info ~10 KiB)

TYPE_SNP = "sev-snp"
TYPE_TDX = "tdx"
TYPE_GPU = "nvidia-gpu"
EVIDENCE_TYPES = (TYPE_SNP, TYPE_TDX, TYPE_GPU)

SNP_CERT_ROLES = ("ark", "ask", "asvk", "vcek", "vlek")
SNP_COLLATERAL_ROLES = ("crl",)
TDX_COLLATERAL_ROLES = (
    "tcb_info", "tcb_info_issuer_chain", "qe_identity", "qe_identity_issuer_chain",
    "pck_crl", "pck_crl_issuer_chain", "root_crl",
)
GPU_RIM_ROLES = ("driver", "vbios")
# nvmlSystemGetConfComputeState as the node reads it; "absent": no NVIDIA driver/GPU at all.
CC_MODES = ("absent", "off", "on", "devtools")

_NAME = re.compile(r"[a-z0-9][a-z0-9._:/+-]*")

CHECK_SIZE = "bundle.size"
CHECK_CBOR = "bundle.cbor"
CHECK_CANONICAL = "bundle.canonical"
CHECK_SCHEMA = "bundle.schema"


def _fail(message: str, path: str, got: Any = None, want: Any = None) -> FormatError:
    return FormatError(CHECK_SCHEMA, message, field=path, got=got, want=want)


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(value.items())))


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class SnpEvidence:
    """An AMD SEV-SNP attestation report with its certificates (``type: "sev-snp"``).

    ``certs`` maps a role (:data:`SNP_CERT_ROLES`) to one DER certificate; ``collateral``
    maps ``"crl"`` to the name of the stapled ARK-signed CRL in the bundle's collateral.
    """

    TYPE: ClassVar[str] = TYPE_SNP
    report: bytes
    certs: Mapping[str, bytes] = field(default_factory=dict)
    collateral: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certs", _frozen_map(self.certs))
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    def references(self) -> Iterable[tuple[str, str]]:
        """(role path, collateral name) pairs this item uses."""
        return ((f"collateral.{k}", v) for k, v in self.collateral.items())


@dataclass(frozen=True)
class TdxEvidence:
    """An Intel TDX quote (``type: "tdx"``); ``collateral`` maps a role
    (:data:`TDX_COLLATERAL_ROLES`) to a name in the bundle's collateral."""

    TYPE: ClassVar[str] = TYPE_TDX
    quote: bytes
    collateral: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    def references(self) -> Iterable[tuple[str, str]]:
        return ((f"collateral.{k}", v) for k, v in self.collateral.items())


@dataclass(frozen=True)
class GpuEvidence:
    """One NVIDIA GPU's SPDM attestation report (``type: "nvidia-gpu"``).

    ``index`` is the GPU's index on the node (NVML order); ``report`` the SPDM
    GET_MEASUREMENTS response with its signature; ``cert_chain`` the PEM device certificate
    chain, leaf first; ``rims`` maps ``driver``/``vbios`` to collateral names, ``ocsp`` lists
    the collateral names of stapled OCSP responses for the chain.
    """

    TYPE: ClassVar[str] = TYPE_GPU
    index: int
    report: bytes
    cert_chain: bytes
    rims: Mapping[str, str] = field(default_factory=dict)
    ocsp: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rims", _frozen_map(self.rims))
        object.__setattr__(self, "ocsp", tuple(self.ocsp))

    def references(self) -> Iterable[tuple[str, str]]:
        yield from ((f"rims.{k}", v) for k, v in self.rims.items())
        yield from ((f"ocsp[{i}]", v) for i, v in enumerate(self.ocsp))


Evidence = SnpEvidence | TdxEvidence | GpuEvidence


@dataclass(frozen=True)
class GpuState:
    """The node-reported (NVML, unsigned) NVIDIA confidential-computing state.

    ``cc_mode`` is one of :data:`CC_MODES` (system-wide CC feature and DEVTOOLS, or
    ``"absent"`` when the node has no NVIDIA stack); ``attached`` counts the GPUs the node
    sees, so a verifier can tell a GPU left out of ``evidence``. Unsigned by the GPUs, but
    bound into REPORT_DATA (docs/formats.md, "Binding"): it is the measured agent's claim.
    """

    cc_mode: str = "absent"
    attached: int = 0


@dataclass(frozen=True)
class EvidenceBundle:
    """A decoded evidence bundle (docs/formats.md, "Evidence bundle (CBOR)").

    ``sigstore_bundle`` (optional, key absent when None) is the release's Sigstore bundle as
    stapled by the node: opaque here, judged by the verifier's ``release.sigstore`` step."""

    nonce: bytes
    node_key: bytes
    simulated: bool
    evidence: tuple[Evidence, ...]
    release: bytes
    tlog_proof: bytes
    collateral: Mapping[str, bytes] = field(default_factory=dict)
    gpu_state: GpuState = GpuState()
    version: int = BUNDLE_VERSION
    sigstore_bundle: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", tuple(self.evidence))
        object.__setattr__(self, "collateral", _frozen_map(self.collateral))

    @property
    def cpu_evidence(self) -> SnpEvidence | TdxEvidence | None:
        """The SEV-SNP or TDX item, if any (there is at most one, and it comes first)."""
        first = self.evidence[0] if self.evidence else None
        return first if isinstance(first, SnpEvidence | TdxEvidence) else None

    @property
    def gpu_evidence(self) -> tuple[GpuEvidence, ...]:
        """The GPU items in increasing index order."""
        return tuple(e for e in self.evidence if isinstance(e, GpuEvidence))

    def encode(self) -> bytes:
        return encode_bundle(self)


# --------------------------------------------------------------------------- encoding


def _item_to_cbor(item: Evidence) -> dict[str, Any]:
    if isinstance(item, SnpEvidence):
        return {"type": TYPE_SNP, "report": item.report, "certs": dict(item.certs),
                "collateral": dict(item.collateral)}
    if isinstance(item, TdxEvidence):
        return {"type": TYPE_TDX, "quote": item.quote, "collateral": dict(item.collateral)}
    if isinstance(item, GpuEvidence):
        return {"type": TYPE_GPU, "index": item.index, "report": item.report,
                "cert_chain": item.cert_chain, "rims": dict(item.rims),
                "ocsp": list(item.ocsp)}
    raise TypeError(f"not an evidence item: {type(item).__name__}")


def to_cbor_value(bundle: EvidenceBundle) -> dict[str, Any]:
    """The bundle as the plain CBOR data model (dict/list/bytes/str/int/bool)."""
    value: dict[str, Any] = {
        "version": bundle.version,
        "nonce": bundle.nonce,
        "node_key": bundle.node_key,
        "simulated": bundle.simulated,
        "gpu_state": {"cc_mode": bundle.gpu_state.cc_mode,
                      "attached": bundle.gpu_state.attached},
        "evidence": [_item_to_cbor(e) for e in bundle.evidence],
        "release": bundle.release,
        "tlog_proof": bundle.tlog_proof,
        "collateral": dict(bundle.collateral),
    }
    if bundle.sigstore_bundle is not None:
        value["sigstore_bundle"] = bundle.sigstore_bundle
    return value


def deterministic_cbor(value: Any) -> bytes:
    """RFC 8949 §4.2.1 core deterministic encoding of plain data.

    cbor2's ``canonical=True`` sorts map keys length-first (RFC 7049 §3.9); for text keys,
    whose head encodes their length, that is the same order as §4.2.1's bytewise order.
    """
    return cbor2.dumps(value, canonical=True)


def encode_bundle(bundle: EvidenceBundle) -> bytes:
    """Serialize a bundle; refuses (FormatError) anything :func:`decode_bundle` would refuse.

    Values of a type CBOR cannot carry (a programming error) raise TypeError.
    """
    data = deterministic_cbor(to_cbor_value(bundle))
    decode_bundle(data)
    return data


# --------------------------------------------------------------------------- decoding


class _Map:
    """Reads a CBOR map with text keys: each key once, all keys consumed (:meth:`finish`)."""

    def __init__(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise _fail("wrong type", path or "bundle", got=_kind(value), want="map")
        for key in value:
            if type(key) is not str:
                raise _fail("map key is not a text string", path or "bundle", got=_kind(key))
        self.value = value
        self.path = path
        self.seen: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        if key not in self.value:
            raise _fail("missing key", self.sub(key))
        self.seen.add(key)
        return self.value[key]

    def has(self, key: str) -> bool:
        return key in self.value

    def blob(self, key: str, *, min_size: int = 1, max_size: int) -> bytes:
        return _blob(self.raw(key), self.sub(key), min_size=min_size, max_size=max_size)

    def finish(self) -> None:
        extra = sorted(set(self.value) - self.seen)
        if extra:
            raise _fail("unknown key", self.sub(extra[0]), got=extra[0])


def _kind(value: Any) -> str:
    names = {bool: "bool", int: "uint", bytes: "bytes", str: "text", list: "array", dict: "map"}
    return names.get(type(value), type(value).__name__)


def _blob(value: Any, path: str, *, min_size: int = 1, max_size: int) -> bytes:
    if type(value) is not bytes:
        raise _fail("wrong type", path, got=_kind(value), want="bytes")
    if not min_size <= len(value) <= max_size:
        want = str(min_size) if min_size == max_size else f"{min_size}..{max_size}"
        raise _fail("wrong size", path, got=len(value), want=want)
    return value


def _uint(value: Any, path: str, *, max_value: int) -> int:
    if type(value) is not int:
        raise _fail("wrong type", path, got=_kind(value), want="uint")
    if not 0 <= value <= max_value:
        raise _fail("out of range", path, got=value, want=f"0..{max_value}")
    return value


def _list(value: Any, path: str, *, max_items: int, min_items: int = 0) -> list[Any]:
    if type(value) is not list:
        raise _fail("wrong type", path, got=_kind(value), want="array")
    if not min_items <= len(value) <= max_items:
        raise _fail("wrong number of items", path, got=len(value),
                    want=f"{min_items}..{max_items}")
    return value


def _name(value: Any, path: str) -> str:
    if type(value) is not str:
        raise _fail("wrong type", path, got=_kind(value), want="text (collateral name)")
    if len(value) > MAX_COLLATERAL_NAME or not _NAME.fullmatch(value):
        raise _fail("bad collateral name", path, got=value[:MAX_COLLATERAL_NAME],
                    want=f"[a-z0-9][a-z0-9._:/+-]*, <= {MAX_COLLATERAL_NAME} chars")
    return value


def _role_map(value: Any, path: str, roles: tuple[str, ...]) -> dict[str, str]:
    m = _Map(value, path)
    out: dict[str, str] = {}
    for role in roles:
        if m.has(role):
            out[role] = _name(m.raw(role), m.sub(role))
    m.finish()
    return out


def _der_sequence(data: bytes, path: str) -> None:
    """Structural DER check (X.690 §8.1, §10.1): one SEQUENCE with a minimal definite length
    spanning exactly ``data``. The certificate/key parsers judge the contents."""
    if len(data) < 2 or data[0] != 0x30:
        raise _fail("not a DER SEQUENCE", path, got=data[:4])
    first = data[1]
    if first < 0x80:
        length, head = first, 2
    else:
        n = first & 0x7F
        body = data[2 : 2 + n]
        if n == 0 or n > 4 or len(body) != n or body[0] == 0:
            raise _fail("bad DER length", path, got=data[:6])
        length, head = int.from_bytes(body, "big"), 2 + n
        if length < 0x80:
            raise _fail("non-minimal DER length", path, got=data[:6])
    if head + length != len(data):
        raise _fail("DER length does not span the value", path, got=len(data),
                    want=head + length)


def _snp(m: _Map) -> SnpEvidence:
    report = m.blob("report", min_size=SNP_REPORT_SIZE, max_size=SNP_REPORT_SIZE)
    certs_map = _Map(m.raw("certs"), m.sub("certs"))
    certs: dict[str, bytes] = {}
    for role in SNP_CERT_ROLES:
        if certs_map.has(role):
            der = certs_map.blob(role, max_size=MAX_CERT)
            _der_sequence(der, certs_map.sub(role))
            certs[role] = der
    certs_map.finish()
    if "vcek" in certs and "vlek" in certs:
        raise _fail("both vcek and vlek", m.sub("certs"), want="at most one endorsement key")
    collateral = _role_map(m.raw("collateral"), m.sub("collateral"), SNP_COLLATERAL_ROLES)
    return SnpEvidence(report, certs, collateral)


def _tdx(m: _Map) -> TdxEvidence:
    quote = m.blob("quote", max_size=MAX_TDX_QUOTE)
    collateral = _role_map(m.raw("collateral"), m.sub("collateral"), TDX_COLLATERAL_ROLES)
    return TdxEvidence(quote, collateral)


def _gpu(m: _Map) -> GpuEvidence:
    index = _uint(m.raw("index"), m.sub("index"), max_value=MAX_GPU_INDEX)
    report = m.blob("report", max_size=MAX_GPU_REPORT)
    chain = m.blob("cert_chain", max_size=MAX_GPU_CERT_CHAIN)
    rims = _role_map(m.raw("rims"), m.sub("rims"), GPU_RIM_ROLES)
    ocsp_path = m.sub("ocsp")
    ocsp = tuple(_name(v, f"{ocsp_path}[{i}]") for i, v in
                 enumerate(_list(m.raw("ocsp"), ocsp_path, max_items=MAX_OCSP_PER_GPU)))
    if len(set(ocsp)) != len(ocsp):
        raise _fail("duplicate OCSP response name", ocsp_path)
    return GpuEvidence(index, report, chain, rims, ocsp)


_ITEM_READERS = {TYPE_SNP: _snp, TYPE_TDX: _tdx, TYPE_GPU: _gpu}


def _item(value: Any, path: str) -> Evidence:
    m = _Map(value, path)
    kind = m.raw("type")
    if type(kind) is not str or kind not in _ITEM_READERS:
        raise _fail("unknown evidence type", m.sub("type"), got=kind if type(kind) is str
                    else _kind(kind), want=" | ".join(EVIDENCE_TYPES))
    item = _ITEM_READERS[kind](m)
    m.finish()
    return item


def _evidence(value: Any) -> tuple[Evidence, ...]:
    items = _list(value, "evidence", min_items=1, max_items=1 + MAX_GPU_ITEMS)
    out = tuple(_item(v, f"evidence[{i}]") for i, v in enumerate(items))
    last_gpu = -1
    for i, item in enumerate(out):
        if isinstance(item, GpuEvidence):
            if item.index <= last_gpu:
                raise _fail("GPU items must be in strictly increasing index order",
                            f"evidence[{i}].index", got=item.index, want=f"> {last_gpu}")
            last_gpu = item.index
            if i >= MAX_GPU_ITEMS and not isinstance(out[0], SnpEvidence | TdxEvidence):
                raise _fail("too many GPU items", "evidence", got=len(out),
                            want=f"<= {MAX_GPU_ITEMS} GPU items")
        elif i != 0:
            raise _fail("the SEV-SNP/TDX item must be the first and only CPU item",
                        f"evidence[{i}].type", got=item.TYPE)
    return out


def _collateral(value: Any) -> dict[str, bytes]:
    m = _Map(value, "collateral")
    if len(m.value) > MAX_COLLATERAL_ENTRIES:
        raise _fail("too many entries", "collateral", got=len(m.value),
                    want=f"<= {MAX_COLLATERAL_ENTRIES}")
    out: dict[str, bytes] = {}
    for name in sorted(m.value):
        path = f"collateral[{name[:MAX_COLLATERAL_NAME]}]"
        _name(name, path)
        out[name] = _blob(m.raw(name), path, max_size=MAX_BLOB)
    m.finish()
    return out


def _gpu_state(value: Any, evidence: tuple[Evidence, ...]) -> GpuState:
    m = _Map(value, "gpu_state")
    cc_mode = m.raw("cc_mode")
    if type(cc_mode) is not str or cc_mode not in CC_MODES:
        raise _fail("unknown CC mode", "gpu_state.cc_mode",
                    got=cc_mode if type(cc_mode) is str else _kind(cc_mode),
                    want=" | ".join(CC_MODES))
    attached = _uint(m.raw("attached"), "gpu_state.attached", max_value=MAX_GPU_ATTACHED)
    m.finish()
    if cc_mode == "absent" and attached:
        raise _fail("GPUs attached but no NVIDIA stack", "gpu_state.attached", got=attached,
                    want=0)
    gpus = sum(isinstance(e, GpuEvidence) for e in evidence)
    if gpus > attached:
        raise _fail("more GPU items than attached GPUs", "gpu_state.attached", got=attached,
                    want=f">= {gpus}")
    return GpuState(cc_mode, attached)


def _check_references(evidence: tuple[Evidence, ...], collateral: Mapping[str, bytes]) -> None:
    used: set[str] = set()
    for i, item in enumerate(evidence):
        for where, name in item.references():
            if name not in collateral:
                raise _fail("names no collateral entry", f"evidence[{i}].{where}", got=name)
            used.add(name)
    unused = sorted(set(collateral) - used)
    if unused:
        raise _fail("collateral entry not used by any evidence item",
                    f"collateral[{unused[0]}]", got=unused[0])


def _from_value(value: Any) -> EvidenceBundle:
    m = _Map(value, "")
    version = _uint(m.raw("version"), "version", max_value=2**64 - 1)
    if version != BUNDLE_VERSION:
        raise _fail("unsupported version", "version", got=version, want=BUNDLE_VERSION)
    nonce = m.blob("nonce", min_size=MIN_NONCE, max_size=MAX_NONCE)
    node_key = m.blob("node_key", max_size=MAX_NODE_KEY)
    _der_sequence(node_key, "node_key")
    simulated = m.raw("simulated")
    if type(simulated) is not bool:
        raise _fail("wrong type", "simulated", got=_kind(simulated), want="bool")
    evidence = _evidence(m.raw("evidence"))
    gpu_state = _gpu_state(m.raw("gpu_state"), evidence)
    release = m.blob("release", max_size=MAX_RELEASE)
    tlog_proof = m.blob("tlog_proof", max_size=MAX_TLOG_PROOF)
    collateral = _collateral(m.raw("collateral"))
    sigstore = (m.blob("sigstore_bundle", max_size=MAX_SIGSTORE_BUNDLE)
                if m.has("sigstore_bundle") else None)
    m.finish()
    _check_references(evidence, collateral)
    return EvidenceBundle(nonce, node_key, simulated, evidence, release, tlog_proof,
                          collateral, gpu_state, version, sigstore)


def decode_bundle(data: bytes) -> EvidenceBundle:
    """Strictly decode an evidence bundle (docs/formats.md, "Evidence bundle (CBOR)").

    Raises FormatError: ``bundle.size`` (over :data:`MAX_BUNDLE_SIZE`), ``bundle.cbor`` (not
    one well-formed CBOR item, a tag, over :data:`MAX_DATA_ITEMS` items or :data:`MAX_DEPTH`
    nesting), ``bundle.schema`` (missing/unknown key, wrong type, size or count, naming the
    field path) or ``bundle.canonical`` (not the deterministic encoding).

    Steps: size cap; a head-only scan (:func:`attest.formats.cbor_scan.scan`) so cbor2 only
    ever sees bounded, tag-free, definite-length input; cbor2 decode; schema; re-encode and
    compare byte for byte (key order, duplicate keys).
    """
    data = bytes(data)
    if len(data) > MAX_BUNDLE_SIZE:
        raise FormatError(CHECK_SIZE, "bundle too large", field="bundle", got=len(data),
                          want=f"<= {MAX_BUNDLE_SIZE}")
    scan(data, check_cbor=CHECK_CBOR, check_canonical=CHECK_CANONICAL, field="bundle",
         max_items=MAX_DATA_ITEMS, max_depth=MAX_DEPTH)
    try:
        value = cbor2.loads(data)
    except Exception as err:  # cbor2 raises several classes on hostile input
        raise FormatError(CHECK_CBOR, f"not well-formed CBOR: {err}", field="bundle") from None
    bundle = _from_value(value)
    try:
        again = deterministic_cbor(to_cbor_value(bundle))
    except Exception as err:
        raise FormatError(CHECK_CBOR, f"cannot re-encode: {err}", field="bundle") from None
    if again != data:
        at = next((i for i, (a, b) in enumerate(zip(again, data, strict=False)) if a != b),
                  min(len(again), len(data)))
        raise FormatError(CHECK_CANONICAL, "not the deterministic CBOR encoding "
                          f"(RFC 8949 §4.2.1); first difference at byte offset {at}",
                          field="bundle", got=data[at : at + 8], want=again[at : at + 8])
    return bundle
