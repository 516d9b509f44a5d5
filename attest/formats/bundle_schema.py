"""Reading a decoded evidence bundle's CBOR data model into its dataclasses, strictly
(docs/formats.md, "Evidence bundle (CBOR)", step 3 "Schema"): every map is read with the
project's one strict mapping reader (CBOR style, FormatError ``bundle.schema``), so a missing
or unknown key, a wrong type, a size, count or range out of bounds names its field path
(``evidence[2].report``). Pure (house rule 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attest.formats.bundle_items import (
    Evidence,
    GpuEvidence,
    GpuState,
    SnpEvidence,
    TdxEvidence,
)
from attest.formats.bundle_limits import (
    BUNDLE_VERSION,
    CC_MODES,
    CHECK_SCHEMA,
    COLLATERAL_NAME_PATTERN,
    EVIDENCE_TYPES,
    GPU_RIM_ROLES,
    MAX_BLOB,
    MAX_CERT,
    MAX_COLLATERAL_ENTRIES,
    MAX_COLLATERAL_NAME,
    MAX_GPU_ATTACHED,
    MAX_GPU_CERT_CHAIN,
    MAX_GPU_INDEX,
    MAX_GPU_ITEMS,
    MAX_GPU_REPORT,
    MAX_NODE_KEY,
    MAX_NONCE,
    MAX_OCSP_PER_GPU,
    MAX_OHTTP_KEYS,
    MAX_RELEASE,
    MAX_SIGSTORE_BUNDLE,
    MAX_TDX_QUOTE,
    MAX_TLOG_PROOF,
    MIN_NONCE,
    SNP_CERT_ROLES,
    SNP_COLLATERAL_ROLES,
    SNP_REPORT_SIZE,
    TDX_COLLATERAL_ROLES,
    TYPE_GPU,
    TYPE_SNP,
    TYPE_TDX,
)
from attest.formats.ohttp import decode_key_config_list, encode_key_config_list
from transparency_log.common.errors import FormatError
from transparency_log.common.strict_mapping import CBOR, StrictMapping

__all__ = ["from_value"]


def _fail(message: str, path: str, got: Any = None, want: Any = None) -> FormatError:
    return FormatError(CHECK_SCHEMA, message, field=path, got=got, want=want)


def _map(value: Any, path: str) -> StrictMapping:
    """A CBOR map with text keys: each key read once, all keys consumed (``finish``)."""
    return StrictMapping(value, path, error=FormatError, check=CHECK_SCHEMA, style=CBOR)


def _kind(value: Any) -> str:
    return CBOR.kind(type(value))


def _blob(value: Any, path: str, *, min_size: int = 1, max_size: int) -> bytes:
    if type(value) is not bytes:
        raise _fail("wrong type", path, got=_kind(value), want="bytes")
    if not min_size <= len(value) <= max_size:
        want = str(min_size) if min_size == max_size else f"{min_size}..{max_size}"
        raise _fail("wrong size", path, got=len(value), want=want)
    return value


def _blob_of(m: StrictMapping, key: str, *, min_size: int = 1, max_size: int) -> bytes:
    return _blob(m.raw(key), m.sub(key), min_size=min_size, max_size=max_size)


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
    if len(value) > MAX_COLLATERAL_NAME or not COLLATERAL_NAME_PATTERN.fullmatch(value):
        raise _fail("bad collateral name", path, got=value[:MAX_COLLATERAL_NAME],
                    want=f"[a-z0-9][a-z0-9._:/+-]*, <= {MAX_COLLATERAL_NAME} chars")
    return value


def _role_map(value: Any, path: str, roles: tuple[str, ...]) -> dict[str, str]:
    m = _map(value, path)
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


def _snp(m: StrictMapping) -> SnpEvidence:
    report = _blob_of(m, "report", min_size=SNP_REPORT_SIZE, max_size=SNP_REPORT_SIZE)
    certs_map = _map(m.raw("certs"), m.sub("certs"))
    certs: dict[str, bytes] = {}
    for role in SNP_CERT_ROLES:
        if certs_map.has(role):
            der = _blob_of(certs_map, role, max_size=MAX_CERT)
            _der_sequence(der, certs_map.sub(role))
            certs[role] = der
    certs_map.finish()
    if "vcek" in certs and "vlek" in certs:
        raise _fail("both vcek and vlek", m.sub("certs"), want="at most one endorsement key")
    collateral = _role_map(m.raw("collateral"), m.sub("collateral"), SNP_COLLATERAL_ROLES)
    return SnpEvidence(report, certs, collateral)


def _tdx(m: StrictMapping) -> TdxEvidence:
    quote = _blob_of(m, "quote", max_size=MAX_TDX_QUOTE)
    collateral = _role_map(m.raw("collateral"), m.sub("collateral"), TDX_COLLATERAL_ROLES)
    return TdxEvidence(quote, collateral)


def _gpu(m: StrictMapping) -> GpuEvidence:
    index = _uint(m.raw("index"), m.sub("index"), max_value=MAX_GPU_INDEX)
    report = _blob_of(m, "report", max_size=MAX_GPU_REPORT)
    chain = _blob_of(m, "cert_chain", max_size=MAX_GPU_CERT_CHAIN)
    rims = _role_map(m.raw("rims"), m.sub("rims"), GPU_RIM_ROLES)
    ocsp_path = m.sub("ocsp")
    ocsp = tuple(_name(v, f"{ocsp_path}[{i}]") for i, v in
                 enumerate(_list(m.raw("ocsp"), ocsp_path, max_items=MAX_OCSP_PER_GPU)))
    if len(set(ocsp)) != len(ocsp):
        raise _fail("duplicate OCSP response name", ocsp_path)
    return GpuEvidence(index, report, chain, rims, ocsp)


_ITEM_READERS = {TYPE_SNP: _snp, TYPE_TDX: _tdx, TYPE_GPU: _gpu}


def _item(value: Any, path: str) -> Evidence:
    m = _map(value, path)
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
    m = _map(value, "collateral")
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
    m = _map(value, "gpu_state")
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


def _ohttp_keys(m: StrictMapping) -> bytes:
    """An ``application/ohttp-keys`` list (RFC 9458 §3.2) of configurations all of which this
    project implements: decoding it and encoding it again gives the same bytes (nothing
    skipped, nothing malformed)."""
    data = _blob_of(m, "ohttp_keys", max_size=MAX_OHTTP_KEYS)
    try:
        again = encode_key_config_list(decode_key_config_list(data))
    except FormatError as err:
        raise _fail(f"not an application/ohttp-keys list: {err.message}", "ohttp_keys") from None
    if again != data:
        raise _fail("holds a key configuration this project does not implement", "ohttp_keys",
                    want="X25519 + HKDF-SHA256 with AES-128-GCM / ChaCha20-Poly1305 only")
    return data


def from_value(value: Any) -> dict[str, Any]:
    """The fields of an :class:`~attest.formats.bundle.EvidenceBundle`, each checked against
    the schema (docs/formats.md, "Evidence bundle (CBOR)")."""
    m = _map(value, "")
    version = _uint(m.raw("version"), "version", max_value=2**64 - 1)
    if version != BUNDLE_VERSION:
        raise _fail("unsupported version", "version", got=version, want=BUNDLE_VERSION)
    nonce = _blob_of(m, "nonce", min_size=MIN_NONCE, max_size=MAX_NONCE)
    node_key = _blob_of(m, "node_key", max_size=MAX_NODE_KEY)
    _der_sequence(node_key, "node_key")
    simulated = m.raw("simulated")
    if type(simulated) is not bool:
        raise _fail("wrong type", "simulated", got=_kind(simulated), want="bool")
    evidence = _evidence(m.raw("evidence"))
    gpu_state = _gpu_state(m.raw("gpu_state"), evidence)
    release = _blob_of(m, "release", max_size=MAX_RELEASE)
    tlog_proof = _blob_of(m, "tlog_proof", max_size=MAX_TLOG_PROOF)
    collateral = _collateral(m.raw("collateral"))
    sigstore = (_blob_of(m, "sigstore_bundle", max_size=MAX_SIGSTORE_BUNDLE)
                if m.has("sigstore_bundle") else None)
    ohttp_keys = _ohttp_keys(m) if m.has("ohttp_keys") else None
    m.finish()
    _check_references(evidence, collateral)
    return {"nonce": nonce, "node_key": node_key, "simulated": simulated, "evidence": evidence,
            "release": release, "tlog_proof": tlog_proof, "collateral": collateral,
            "gpu_state": gpu_state, "version": version, "sigstore_bundle": sigstore,
            "ohttp_keys": ohttp_keys}
