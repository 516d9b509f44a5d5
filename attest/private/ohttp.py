"""Oblivious HTTP encapsulation (RFC 9458 §4.3, §4.4) with single-use contexts.

The roles are split by type, as in martinthomson/ohttp (STYLE.md §10):

- client: :func:`encapsulate_request` (or :meth:`ClientRequest.encapsulate`) returns the
  Encapsulated Request and a :class:`ClientResponse`, which opens exactly one response;
- gateway: :meth:`Gateway.decapsulate` returns the request and a :class:`ServerResponse`,
  which encapsulates exactly one response.

Each HPKE context is used once; a second use raises ``RuntimeError`` (a programming error,
not bad input). Randomness (the ephemeral key, the response nonce) is the ``rng`` parameter.

Checks (docs/formats.md, "Private requests"):

| check | class | when |
| --- | --- | --- |
| ``ohttp.format`` | FormatError | malformed bytes, unsupported KEM/KDF/AEAD, bad public key |
| ``ohttp.key_id`` | FormatError | the gateway holds no key with that Key Identifier and KEM |
| ``ohttp.suite`` | FormatError | the KDF/AEAD pair is not one the key configuration offers |
| ``ohttp.decrypt`` | DecryptError | anything that fails while opening (one error, no detail) |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from attest.formats.ohttp import (
    AEAD_AES_128_GCM,
    AEAD_CHACHA20_POLY1305,
    KDF_HKDF_SHA256,
    KEM_X25519_HKDF_SHA256,
    EncapsulatedRequest,
    EncapsulatedResponse,
    KeyConfig,
    RequestHeader,
    SymmetricSuite,
    decode_encapsulated_request,
    decode_encapsulated_response,
    encode_key_config_list,
    response_nonce_size,
)
from attest.private.errors import DecryptError
from attest.private.hpke import (
    PrivateKey,
    RecipientContext,
    Rng,
    SenderContext,
    Suite,
    setup_base_r,
    setup_base_s,
    suite,
)
from transparency_log.common.errors import FormatError

# RFC 9458 §4.3, §4.4: the labels, as martinthomson/ohttp names them.
LABEL_REQUEST = b"message/bhttp request"
LABEL_RESPONSE = b"message/bhttp response"
INFO_KEY = b"key"
INFO_NONCE = b"nonce"

CHECK_KEY_ID = "ohttp.key_id"
CHECK_SUITE = "ohttp.suite"

# What a node offers, in order of preference.
DEFAULT_SUITES: tuple[SymmetricSuite, ...] = (
    SymmetricSuite(KDF_HKDF_SHA256, AEAD_AES_128_GCM),
    SymmetricSuite(KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305),
)


def request_info(header: RequestHeader) -> bytes:
    """info = "message/bhttp request" ‖ 0x00 ‖ hdr (RFC 9458 §4.3 step 2)."""
    return LABEL_REQUEST + b"\x00" + header.encode()


def response_key_nonce(s: Suite, secret: bytes, enc: bytes, response_nonce: bytes
                       ) -> tuple[bytes, bytes]:
    """RFC 9458 §4.4 steps 3-5: prk = Extract(enc ‖ response_nonce, secret);
    key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn) (HKDF-SHA256)."""
    mac = hmac.HMAC(enc + response_nonce, hashes.SHA256())
    mac.update(secret)
    prk = mac.finalize()
    key = HKDFExpand(hashes.SHA256(), s.nk, INFO_KEY).derive(prk)
    nonce = HKDFExpand(hashes.SHA256(), s.nn, INFO_NONCE).derive(prk)
    return key, nonce


def _aead(s: Suite, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if s.aead_id == AEAD_AES_128_GCM:
        return AESGCM(key)
    return ChaCha20Poly1305(key)


def _response_secret(s: Suite, ctx: SenderContext | RecipientContext) -> bytes:
    """RFC 9458 §4.4 step 1: Export("message/bhttp response", max(Nn, Nk))."""
    return ctx.export(LABEL_RESPONSE, response_nonce_size(s.aead_id))


class _Once:
    def __init__(self) -> None:
        self._used = False

    def _use(self) -> None:
        if self._used:
            raise RuntimeError(f"{type(self).__name__} is single-use")
        self._used = True


# ---------------------------------------------------------------- client


class ClientResponse(_Once):
    """Opens the one response to one request (RFC 9458 §4.4, client side)."""

    def __init__(self, s: Suite, enc: bytes, ctx: SenderContext) -> None:
        super().__init__()
        self._suite = s
        self._enc = enc
        self._ctx = ctx

    def decapsulate(self, enc_response: bytes) -> bytes:
        """The Binary HTTP response inside ``enc_response``; ``ohttp.format`` when it is too
        short to hold a nonce and a tag, DecryptError when it does not open."""
        self._use()
        parsed = decode_encapsulated_response(enc_response, self._suite.aead_id)
        secret = _response_secret(self._suite, self._ctx)
        key, nonce = response_key_nonce(self._suite, secret, self._enc, parsed.nonce)
        try:
            return _aead(self._suite, key).decrypt(nonce, parsed.ciphertext, b"")
        except InvalidTag:
            raise DecryptError() from None


class ClientRequest(_Once):
    """One request to one key configuration (RFC 9458 §4.3, client side)."""

    def __init__(self, config: KeyConfig, *, symmetric: SymmetricSuite | None = None) -> None:
        super().__init__()
        offered = config.supported_suites()
        if symmetric is None:
            if not offered:
                raise FormatError(CHECK_SUITE, "the key configuration offers no supported "
                                  "KDF/AEAD pair", field="HPKE Symmetric Algorithms")
            symmetric = offered[0]
        elif symmetric not in offered:
            raise FormatError(CHECK_SUITE, "KDF/AEAD pair not offered by the key configuration",
                              field="HPKE Symmetric Algorithms",
                              got=f"{symmetric.kdf_id:#06x}/{symmetric.aead_id:#06x}")
        self._config = config
        self._suite = suite(config.kem_id, symmetric.kdf_id, symmetric.aead_id)

    def encapsulate(self, request: bytes, *, rng: Rng) -> tuple[bytes, ClientResponse]:
        """RFC 9458 §4.3 steps 1-5: ``(hdr ‖ enc ‖ ct, response opener)``."""
        self._use()
        s = self._suite
        header = RequestHeader(self._config.key_id, s.kem_id, s.kdf_id, s.aead_id)
        enc, ctx = setup_base_s(s, self._config.public_key, request_info(header), rng=rng)
        ct = ctx.seal(request, b"")
        return EncapsulatedRequest(header, enc, ct).encode(), ClientResponse(s, enc, ctx)


def encapsulate_request(config: KeyConfig, request: bytes, *, rng: Rng,
                        symmetric: SymmetricSuite | None = None
                        ) -> tuple[bytes, ClientResponse]:
    """Encapsulate one Binary HTTP request to ``config`` (a fresh encapsulation each call)."""
    return ClientRequest(config, symmetric=symmetric).encapsulate(request, rng=rng)


# ---------------------------------------------------------------- gateway


@dataclass(frozen=True)
class GatewayKey:
    """A key the gateway holds: its identifier, private key and offered KDF/AEAD pairs."""

    key_id: int
    private_key: PrivateKey
    suites: tuple[SymmetricSuite, ...] = DEFAULT_SUITES
    kem_id: int = KEM_X25519_HKDF_SHA256

    def config(self) -> KeyConfig:
        """The public Key Config (RFC 9458 §3.1) clients encapsulate to."""
        return KeyConfig(self.key_id, self.kem_id, self.private_key.public_bytes(), self.suites)

    def ohttp_keys(self) -> bytes:
        """The ``application/ohttp-keys`` body (RFC 9458 §3.2) listing this one key: what the
        node serves at ``/.well-known/ohttp-gateway`` and its evidence binds."""
        return encode_key_config_list([self.config()])

    @classmethod
    def generate(cls, rng: Rng) -> GatewayKey:
        """A fresh key (RFC 9180 §7.1.3 GenerateKeyPair) with a random Key Identifier."""
        return cls(rng(1)[0], PrivateKey.generate(rng))


class ServerResponse(_Once):
    """Encapsulates the one response to one decapsulated request (RFC 9458 §4.4)."""

    def __init__(self, s: Suite, enc: bytes, ctx: RecipientContext) -> None:
        super().__init__()
        self._suite = s
        self._enc = enc
        self._ctx = ctx

    def encapsulate(self, response: bytes, *, rng: Rng) -> bytes:
        """response_nonce ‖ Seal(key, nonce, "", response); the nonce is ``rng(max(Nn, Nk))``."""
        self._use()
        s = self._suite
        nonce_size = response_nonce_size(s.aead_id)
        response_nonce = rng(nonce_size)
        if len(response_nonce) != nonce_size:
            raise ValueError(f"rng returned {len(response_nonce)} bytes, want {nonce_size}")
        secret = _response_secret(s, self._ctx)
        key, nonce = response_key_nonce(s, secret, self._enc, response_nonce)
        ct = _aead(s, key).encrypt(nonce, response, b"")
        return EncapsulatedResponse(response_nonce, ct).encode()


class Gateway:
    """The oblivious gateway's decapsulation (RFC 9458 §4.3, server side)."""

    def __init__(self, keys: Sequence[GatewayKey]) -> None:
        ids = [k.key_id for k in keys]
        if not keys or len(set(ids)) != len(ids):
            raise ValueError("a gateway needs one or more keys with distinct key ids")
        self._keys = {k.key_id: k for k in keys}

    def configs(self) -> tuple[KeyConfig, ...]:
        return tuple(k.config() for k in self._keys.values())

    def decapsulate(self, enc_request: bytes) -> tuple[bytes, ServerResponse]:
        """``(Binary HTTP request, response encapsulator)``. The key and suite are checked
        before any crypto runs (RFC 9458 §4.3 steps 1a, 1b)."""
        parsed = decode_encapsulated_request(enc_request)
        h = parsed.header
        key = self._keys.get(h.key_id)
        if key is None or key.kem_id != h.kem_id:
            raise FormatError(CHECK_KEY_ID, "no key with this identifier and KEM",
                              field="Key Identifier", got=f"{h.key_id} (KEM {h.kem_id:#06x})",
                              want=", ".join(f"{k.key_id} (KEM {k.kem_id:#06x})"
                                             for k in self._keys.values()))
        if SymmetricSuite(h.kdf_id, h.aead_id) not in key.suites:
            raise FormatError(CHECK_SUITE, "KDF/AEAD pair not offered for this key",
                              field="HPKE Symmetric Algorithms",
                              got=f"{h.kdf_id:#06x}/{h.aead_id:#06x}")
        s = suite(h.kem_id, h.kdf_id, h.aead_id)
        ctx = setup_base_r(s, parsed.enc, key.private_key, request_info(h))
        request = ctx.open(parsed.ciphertext, b"")
        return request, ServerResponse(s, parsed.enc, ctx)
