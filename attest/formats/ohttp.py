"""Oblivious HTTP wire formats (RFC 9458): key configurations and the two encapsulations.

Pure: bytes in, frozen dataclass out, or FormatError (check ``ohttp.format``). The crypto that
fills and opens these structures is attest/private/ohttp.py; docs/formats.md ("Private
requests") lays every byte out.

- Key Config (§3.1): key_id (1) ‖ kem_id (2) ‖ public key (Npk, from the KEM) ‖ length of the
  symmetric algorithms (2, a non-zero multiple of 4) ‖ (kdf_id (2) ‖ aead_id (2))… The
  decoder takes Npk from the KEM and refuses leftover bytes.
- application/ohttp-keys (§3.2): configurations, each prefixed by its length (2 bytes). A
  configuration with a KEM we do not implement, or without any symmetric algorithm pair we
  implement, is skipped (:class:`UnsupportedConfig`); any malformed entry refuses the whole
  list (the RFC says clients MUST discard a collection with encoding errors).
- Encapsulated Request (§4.1): key_id (1) ‖ kem_id (2) ‖ kdf_id (2) ‖ aead_id (2) ‖ enc
  (Nenc) ‖ ciphertext (at least the AEAD tag).
- Encapsulated Response (§4.2): response_nonce (max(Nn, Nk)) ‖ ciphertext (at least the tag).

Identifiers and sizes are RFC 9180 §7 (KEM, KDF, AEAD tables).
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.binary import Reader
from transparency_log.common.errors import FormatError

CHECK = "ohttp.format"

# RFC 9180 §7.1, §7.2, §7.3: the algorithms this project implements.
KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_128_GCM = 0x0001
AEAD_CHACHA20_POLY1305 = 0x0003

NPK = {KEM_X25519_HKDF_SHA256: 32}  # public key size, bytes
NENC = {KEM_X25519_HKDF_SHA256: 32}  # encapsulated key size, bytes
NH = {KDF_HKDF_SHA256: 32}  # KDF output size, bytes
AEAD_SIZES = {AEAD_AES_128_GCM: (16, 12, 16), AEAD_CHACHA20_POLY1305: (32, 12, 16)}  # Nk Nn Nt

MEDIA_TYPE_KEYS = "application/ohttp-keys"  # RFC 9458 §3.2
MEDIA_TYPE_REQUEST = "message/ohttp-req"  # §4.1
MEDIA_TYPE_RESPONSE = "message/ohttp-res"  # §4.2

REQUEST_HEADER_SIZE = 7  # key_id (1) + kem_id, kdf_id, aead_id (2 each)
MAX_KEY_CONFIGS = 64  # entries in one application/ohttp-keys list (ours)


class UnsupportedConfig(Exception):
    """A well-formed key configuration this project cannot use (unknown KEM or no usable
    symmetric suite). :func:`decode_key_config_list` skips it; nothing else is skipped."""


@dataclass(frozen=True)
class SymmetricSuite:
    kdf_id: int
    aead_id: int

    @property
    def supported(self) -> bool:
        return self.kdf_id in NH and self.aead_id in AEAD_SIZES


@dataclass(frozen=True)
class KeyConfig:
    """RFC 9458 §3.1 Key Config."""

    key_id: int
    kem_id: int
    public_key: bytes
    suites: tuple[SymmetricSuite, ...]

    def supported_suites(self) -> tuple[SymmetricSuite, ...]:
        return tuple(s for s in self.suites if s.supported)


def encode_key_config(config: KeyConfig) -> bytes:
    if not 0 <= config.key_id <= 0xFF:
        raise FormatError(CHECK, "key identifier out of range", field="Key Identifier",
                          got=config.key_id, want="0..255")
    if config.kem_id not in NPK:
        raise FormatError(CHECK, "unsupported KEM", field="HPKE KEM ID", got=config.kem_id,
                          want=sorted(NPK))
    if len(config.public_key) != NPK[config.kem_id]:
        raise FormatError(CHECK, "wrong public key size", field="HPKE Public Key",
                          got=len(config.public_key), want=NPK[config.kem_id])
    if not 1 <= len(config.suites) <= 0xFFFF // 4:
        raise FormatError(CHECK, "need 1..16383 symmetric algorithm pairs",
                          field="HPKE Symmetric Algorithms", got=len(config.suites))
    out = bytearray()
    out += config.key_id.to_bytes(1, "big") + config.kem_id.to_bytes(2, "big")
    out += config.public_key
    out += (4 * len(config.suites)).to_bytes(2, "big")
    for s in config.suites:
        out += s.kdf_id.to_bytes(2, "big") + s.aead_id.to_bytes(2, "big")
    return bytes(out)


def decode_key_config(data: bytes) -> KeyConfig:
    """Parse one Key Config (exactly ``data``). Raises UnsupportedConfig for a KEM we do not
    implement (its key length is then unknown) or when no symmetric pair is usable."""
    r = Reader(data, check=CHECK)
    key_id = r.uint(1, "Key Identifier", order="big")
    kem_id = r.uint(2, "HPKE KEM ID", order="big")
    if kem_id not in NPK:
        raise UnsupportedConfig(f"KEM 0x{kem_id:04x}")
    public_key = r.take(NPK[kem_id], "HPKE Public Key")
    length = r.uint(2, "HPKE Symmetric Algorithms Length", order="big")
    if length == 0 or length % 4:
        raise FormatError(CHECK, "symmetric algorithms length must be a non-zero multiple of 4",
                          field="HPKE Symmetric Algorithms Length", got=length)
    body = r.take(length, "HPKE Symmetric Algorithms")
    if r.remaining:
        raise FormatError(CHECK, "bytes after the key configuration", field="Key Config",
                          got=r.remaining, want=0)
    suites = tuple(
        SymmetricSuite(int.from_bytes(body[i : i + 2], "big"),
                       int.from_bytes(body[i + 2 : i + 4], "big"))
        for i in range(0, length, 4)
    )
    config = KeyConfig(key_id, kem_id, public_key, suites)
    if not config.supported_suites():
        raise UnsupportedConfig("no supported KDF/AEAD pair")
    return config


def encode_key_config_list(configs: list[KeyConfig] | tuple[KeyConfig, ...]) -> bytes:
    """application/ohttp-keys: each config prefixed by its 2-byte length (§3.2)."""
    if not configs:
        raise FormatError(CHECK, "an ohttp-keys list holds at least one configuration",
                          field="application/ohttp-keys")
    out = bytearray()
    for config in configs:
        body = encode_key_config(config)
        out += len(body).to_bytes(2, "big") + body
    return bytes(out)


def decode_key_config_list(data: bytes) -> tuple[KeyConfig, ...]:
    """Every supported configuration in an application/ohttp-keys body, in order. Skips only
    unsupported entries; refuses the whole list on any malformed one, and when nothing usable
    is left."""
    r = Reader(data, check=CHECK)
    out: list[KeyConfig] = []
    entries = 0
    while r.remaining:
        entries += 1
        if entries > MAX_KEY_CONFIGS:
            raise FormatError(CHECK, "too many key configurations",
                              field="application/ohttp-keys", want=f"<= {MAX_KEY_CONFIGS}")
        length = r.uint(2, "Key Config Length", order="big")
        body = r.take(length, "Key Config")
        try:
            out.append(decode_key_config(body))
        except UnsupportedConfig:
            continue
    if not out:
        raise FormatError(CHECK, "no supported key configuration",
                          field="application/ohttp-keys", got=entries)
    return tuple(out)


@dataclass(frozen=True)
class RequestHeader:
    """The first 7 bytes of an Encapsulated Request; also the tail of the HPKE info (§4.3)."""

    key_id: int
    kem_id: int
    kdf_id: int
    aead_id: int

    def encode(self) -> bytes:
        return (self.key_id.to_bytes(1, "big") + self.kem_id.to_bytes(2, "big")
                + self.kdf_id.to_bytes(2, "big") + self.aead_id.to_bytes(2, "big"))


@dataclass(frozen=True)
class EncapsulatedRequest:
    """RFC 9458 §4.1."""

    header: RequestHeader
    enc: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return self.header.encode() + self.enc + self.ciphertext


def decode_encapsulated_request(data: bytes) -> EncapsulatedRequest:
    """Split an Encapsulated Request. The suite must be one we implement (its enc and tag sizes
    are needed to split); whether it matches a key we hold is the gateway's check."""
    r = Reader(data, check=CHECK)
    key_id = r.uint(1, "Key Identifier", order="big")
    kem_id = r.uint(2, "HPKE KEM ID", order="big")
    kdf_id = r.uint(2, "HPKE KDF ID", order="big")
    aead_id = r.uint(2, "HPKE AEAD ID", order="big")
    check_suite(kem_id, kdf_id, aead_id)
    enc = r.take(NENC[kem_id], "Encapsulated KEM Shared Secret")
    ct = r.rest()
    tag = AEAD_SIZES[aead_id][2]
    if len(ct) < tag:
        raise FormatError(CHECK, "ciphertext shorter than the AEAD tag",
                          field="HPKE-Protected Request", got=len(ct), want=f">= {tag}")
    return EncapsulatedRequest(RequestHeader(key_id, kem_id, kdf_id, aead_id), enc, ct)


def check_suite(kem_id: int, kdf_id: int, aead_id: int) -> None:
    """FormatError ``ohttp.format`` unless (KEM, KDF, AEAD) is a suite we implement (RFC 9180
    §7 ids: the KEM of NENC, the KDF of NH, an AEAD of AEAD_SIZES)."""
    if kem_id not in NENC:
        raise FormatError(CHECK, "unsupported KEM", field="HPKE KEM ID", got=kem_id,
                          want=sorted(NENC))
    if kdf_id not in NH:
        raise FormatError(CHECK, "unsupported KDF", field="HPKE KDF ID", got=kdf_id,
                          want=sorted(NH))
    if aead_id not in AEAD_SIZES:
        raise FormatError(CHECK, "unsupported AEAD", field="HPKE AEAD ID", got=aead_id,
                          want=sorted(AEAD_SIZES))


def response_nonce_size(aead_id: int) -> int:
    """max(Nn, Nk) for the AEAD (RFC 9458 §4.2)."""
    nk, nn, _ = AEAD_SIZES[aead_id]
    return max(nn, nk)


@dataclass(frozen=True)
class EncapsulatedResponse:
    """RFC 9458 §4.2."""

    nonce: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return self.nonce + self.ciphertext


def decode_encapsulated_response(data: bytes, aead_id: int) -> EncapsulatedResponse:
    """Split an Encapsulated Response for the AEAD the request used."""
    if aead_id not in AEAD_SIZES:
        raise FormatError(CHECK, "unsupported AEAD", field="HPKE AEAD ID", got=aead_id,
                          want=sorted(AEAD_SIZES))
    size = response_nonce_size(aead_id)
    tag = AEAD_SIZES[aead_id][2]
    if len(data) < size + tag:
        raise FormatError(CHECK, "encapsulated response too short",
                          field="Encapsulated Response", got=len(data), want=f">= {size + tag}")
    return EncapsulatedResponse(bytes(data[:size]), bytes(data[size:]))
