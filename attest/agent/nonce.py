"""The nonce of a cached bundle (``GET /.well-known/attestlog/bundle``): a timestamp.

A client that accepts bounded staleness takes the node's cached bundle instead of asking
for a fresh one; its nonce is then not the client's but says when it was made
(docs/formats.md, "Node agent: cached-bundle nonce"). 32 bytes::

    offset  size  field
    0x00    16    "attestlog/ts/v1" followed by one 0x00 byte (ASCII, the prefix)
    0x10    8     unix time in seconds when the bundle was made, unsigned big-endian
    0x18    8     random bytes (two bundles made in one second differ)

A client checks the prefix, then ``now - time <= its max staleness`` (and that the time is
not in the future beyond its clock skew). A fresh bundle's nonce is whatever the client
sent (32..64 bytes); a client nonce that happens to start with the prefix is refused by
the agent, so a cached-bundle nonce is never a client's.
"""

from __future__ import annotations

from transparency_log.common.errors import FormatError

__all__ = ["TIME_NONCE_PREFIX", "TIME_NONCE_SIZE", "is_time_nonce", "parse_time_nonce",
           "time_nonce"]

TIME_NONCE_PREFIX = b"attestlog/ts/v1\x00"
TIME_NONCE_SIZE = 32
CHECK = "agent.nonce"


def time_nonce(unix_seconds: int, random8: bytes) -> bytes:
    """The cached-bundle nonce for a bundle made at ``unix_seconds``."""
    if len(random8) != 8 or not 0 <= unix_seconds < 2**64:
        raise ValueError("want 8 random bytes and a non-negative 64-bit time")
    return TIME_NONCE_PREFIX + unix_seconds.to_bytes(8, "big") + random8


def is_time_nonce(nonce: bytes) -> bool:
    return nonce.startswith(TIME_NONCE_PREFIX)


def parse_time_nonce(nonce: bytes) -> int:
    """The unix time a cached-bundle nonce carries (FormatError ``agent.nonce`` otherwise)."""
    if len(nonce) != TIME_NONCE_SIZE or not is_time_nonce(nonce):
        raise FormatError(CHECK, "not a cached-bundle (timestamp) nonce", field="nonce",
                          got=nonce[:16], want=TIME_NONCE_PREFIX)
    return int.from_bytes(nonce[16:24], "big")
