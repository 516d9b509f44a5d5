"""The one decryption error of the private-request path.

Like Fernet's ``InvalidToken`` (STYLE.md §8): whatever went wrong while opening a ciphertext
(a wrong key, a flipped bit, a low-order ephemeral key, a response to another request) gives
the same error with the same message and no detail, so a peer learns nothing from it.
"""

from __future__ import annotations

from transparency_log.common.errors import VerificationError

CHECK_DECRYPT = "ohttp.decrypt"


class DecryptError(VerificationError):
    """A ciphertext did not open. Carries no field, got or want, on purpose."""

    kind = "decrypt"

    def __init__(self) -> None:
        super().__init__(CHECK_DECRYPT, "cannot decrypt")
