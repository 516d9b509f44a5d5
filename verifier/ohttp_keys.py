"""The node's attested HPKE request key, for a client about to send a private request (issue 13).

A client encapsulates a private request (RFC 9458) only to a key configuration the node's
verified evidence binds: the bundle's ``ohttp_keys`` (``application/ohttp-keys``, RFC 9458
§3.2), which REPORT_DATA and every GPU nonce commit to (docs/formats.md, "Binding"). So:

- :func:`attested_key_configs` / :func:`attested_key_config` (also
  ``Result.ohttp_key_config``) read it from an **accepted** :class:`verifier.pipeline.Result`
  only; a refused Result, or evidence that binds no key configuration, is refused with
  ``binding.ohttp_keys`` (VerificationError) and no key is returned.
- :func:`check_served_key_config`: the key configuration a node (or anyone on the path)
  serves at ``/.well-known/ohttp-gateway`` (RFC 9540 §3) must be byte for byte the attested
  one, else ``binding.ohttp_keys``. A client need not fetch it at all: the attested one is
  what it encapsulates to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attest.formats.ohttp import KeyConfig, decode_key_config_list
from transparency_log.common.errors import VerificationError
from verifier.binding_check import CHECK_OHTTP_KEYS

if TYPE_CHECKING:
    from verifier.result import Result

__all__ = ["CHECK_OHTTP_KEYS", "attested_key_config", "attested_key_configs",
           "attested_ohttp_keys", "check_served_key_config"]


def attested_ohttp_keys(result: Result) -> bytes:
    """The ``application/ohttp-keys`` bytes an accepted Result's evidence binds."""
    if not result.accepted or result.bundle is None:
        raise VerificationError(CHECK_OHTTP_KEYS, "the node's evidence was not accepted: no "
                                "attested HPKE key to encapsulate to", field="verdict",
                                got=result.verdict, want="accepted")
    keys = result.bundle.ohttp_keys
    if keys is None:
        raise VerificationError(CHECK_OHTTP_KEYS, "the node's evidence binds no HPKE key "
                                "configuration (it cannot take private requests)",
                                field="ohttp_keys", got="absent",
                                want="application/ohttp-keys")
    return keys


def attested_key_configs(result: Result) -> tuple[KeyConfig, ...]:
    """Every key configuration the accepted Result's evidence binds, in the node's order."""
    return decode_key_config_list(attested_ohttp_keys(result))


def attested_key_config(result: Result) -> KeyConfig:
    """The node's preferred (first) attested key configuration."""
    return attested_key_configs(result)[0]


def check_served_key_config(result: Result, served: bytes) -> tuple[KeyConfig, ...]:
    """Compare the body a node served at ``/.well-known/ohttp-gateway`` with the attested key
    configuration; return the configurations when they are the same bytes."""
    want = attested_ohttp_keys(result)
    if bytes(served) != want:
        raise VerificationError(CHECK_OHTTP_KEYS, "the served HPKE key configuration is not "
                                "the one the node's evidence binds", field="ohttp_keys",
                                got=bytes(served)[:64], want=want[:64])
    return decode_key_config_list(want)
