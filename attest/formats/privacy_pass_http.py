"""Privacy Pass on HTTP: the PrivateToken authentication headers and the issuer directory.

Pure and strict (check ``privacypass.format``); docs/formats.md ("Anonymous tokens (Privacy
Pass)") has the grammar and the JSON.

- ``WWW-Authenticate`` (RFC 9577 §2.1.2, grammar RFC 9110 §11.2, §11.6.1): a list of
  challenges; each ``PrivateToken`` challenge needs ``challenge`` (base64url TokenChallenge)
  and may carry ``token-key`` (base64url token key) and ``max-age`` (decimal seconds).
  Challenges of other schemes (``Basic``…) are skipped; unknown parameters are ignored, as
  RFC 9577 says they MUST be. The whole header must parse: no leftover text, no empty list
  element, no parameter twice in a challenge.
- ``Authorization`` (RFC 9577 §2.2.2, RFC 9110 §11.6.2): exactly one ``PrivateToken``
  credential with a ``token`` parameter (base64url Token).
- Base64url values are RFC 4648 §5 *with* padding (RFC 9577 §2.1.2), canonical: no missing
  or extra padding, no non-zero trailing bits, no other alphabet.
- Issuer directory (RFC 9578 §4, ``/.well-known/private-token-issuer-directory``): a JSON
  object with ``issuer-request-uri`` and a non-empty ``token-keys`` list of
  ``{token-type, token-key, not-before?}``. Duplicate names are refused; unknown names are
  ignored (the RFC lets directories grow).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from transparency_log.common.errors import FormatError
from transparency_log.common.strict_mapping import strict_json

CHECK = "privacypass.format"
SCHEME = "PrivateToken"
DIRECTORY_PATH = "/.well-known/private-token-issuer-directory"
DIRECTORY_MEDIA_TYPE = "application/private-token-issuer-directory"
TOKEN_REQUEST_MEDIA_TYPE = "application/private-token-request"  # noqa: S105 (a media type)
TOKEN_RESPONSE_MEDIA_TYPE = "application/private-token-response"  # noqa: S105 (a media type)

MAX_HEADER_LEN = 16 * 1024
MAX_CHALLENGES = 16
MAX_PARAMS = 16
MAX_DIRECTORY_LEN = 64 * 1024
MAX_TOKEN_KEYS = 32
MAX_MAX_AGE = 2**31 - 1

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 token
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 9110 §11.2 token68
_OWS = re.compile(r"[ \t]*")
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"')  # §5.6.4
_QUOTED_PAIR = re.compile(r"\\(.)")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,9}")


def b64url_decode(text: str, field: str) -> bytes:
    """Padded base64url (RFC 4648 §5), canonical; anything else is a FormatError."""
    try:
        raw = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise FormatError(CHECK, "not padded base64url", field=field, got=text[:64]) from None
    if base64.urlsafe_b64encode(raw).decode("ascii") != text:
        raise FormatError(CHECK, "non-canonical base64url (padding or trailing bits)",
                          field=field, got=text[:64])
    return raw


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------
# RFC 9110 §11 challenge / credentials lists


@dataclass(frozen=True)
class AuthChallenge:
    """One challenge or credential: the scheme, and its parameters (names lowercased) or
    its token68."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


class _Cursor:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.pos = 0
        self.field = field

    def fail(self, what: str) -> FormatError:
        return FormatError(CHECK, f"{what} at offset {self.pos}", field=self.field,
                           got=self.text[self.pos:self.pos + 40] or "(end)")

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def ows(self) -> None:
        self.match(_OWS)

    def at_end(self) -> bool:
        return self.pos == len(self.text)

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]


def _try_param(cur: _Cursor) -> tuple[str, str] | None:
    """auth-param = token BWS "=" BWS ( token / quoted-string ); None (cursor kept) if not."""
    start = cur.pos
    name = cur.match(_TOKEN)
    if name:
        cur.ows()
        if cur.peek() == "=":
            cur.pos += 1
            cur.ows()
            value = cur.match(_TOKEN)
            if value:
                return name.group(0).lower(), value.group(0)
            quoted = cur.match(_QUOTED)
            if quoted:
                return name.group(0).lower(), _QUOTED_PAIR.sub(r"\1", quoted.group(1))
    cur.pos = start
    return None


def _next_is_param(cur: _Cursor) -> bool:
    start = cur.pos
    found = _try_param(cur) is not None
    cur.pos = start
    return found


def parse_auth_list(text: str, field: str) -> list[AuthChallenge]:
    """A ``1#challenge`` / ``1#credentials`` list (RFC 9110 §11.6.1), the whole text."""
    if len(text) > MAX_HEADER_LEN:
        raise FormatError(CHECK, "header too long", field=field, got=len(text),
                          want=f"<= {MAX_HEADER_LEN}")
    cur = _Cursor(text, field)
    out: list[AuthChallenge] = []
    cur.ows()
    while True:
        scheme = cur.match(_TOKEN)
        if not scheme:
            raise cur.fail("expected an auth-scheme")
        params: list[tuple[str, str]] = []
        token68 = None
        if cur.peek() == " ":
            cur.ows()
            if not cur.at_end() and cur.peek() != ",":
                if _next_is_param(cur):
                    while True:
                        param = _try_param(cur)
                        if param is None:
                            raise cur.fail("expected an auth-param")
                        if any(param[0] == name for name, _ in params):
                            raise FormatError(CHECK, "parameter given twice", field=field,
                                              got=param[0])
                        params.append(param)
                        if len(params) > MAX_PARAMS:
                            raise cur.fail("too many parameters")
                        save = cur.pos
                        cur.ows()
                        if cur.peek() != ",":
                            cur.pos = save
                            break
                        cur.pos += 1
                        cur.ows()
                        if not _next_is_param(cur):
                            cur.pos = save  # the comma starts the next challenge
                            break
                else:
                    m = cur.match(_TOKEN68)
                    if not m:
                        raise cur.fail("expected token68 or auth-param")
                    token68 = m.group(0)
        out.append(AuthChallenge(scheme=scheme.group(0), params=tuple(params),
                                 token68=token68))
        if len(out) > MAX_CHALLENGES:
            raise cur.fail("too many challenges")
        cur.ows()
        if cur.at_end():
            return out
        if cur.peek() != ",":
            raise cur.fail("expected ',' or the end of the header")
        cur.pos += 1
        cur.ows()
        if cur.at_end() or cur.peek() == ",":
            raise cur.fail("empty list element")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# WWW-Authenticate: PrivateToken (RFC 9577 §2.1.2)


@dataclass(frozen=True)
class PrivateTokenChallenge:
    """One ``PrivateToken`` challenge: raw TokenChallenge bytes, token key, max-age."""

    challenge: bytes
    token_key: bytes | None = None
    max_age: int | None = None

    def header_value(self) -> str:
        parts = [f"challenge={_quote(b64url_encode(self.challenge))}"]
        if self.token_key is not None:
            parts.append(f"token-key={_quote(b64url_encode(self.token_key))}")
        if self.max_age is not None:
            parts.append(f"max-age={self.max_age}")
        return f"{SCHEME} " + ", ".join(parts)


def _decimal(text: str, field: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_MAX_AGE:
        raise FormatError(CHECK, "not a canonical decimal number of seconds", field=field,
                          got=text)
    return int(text)


def parse_www_authenticate(value: str) -> list[PrivateTokenChallenge]:
    """Every ``PrivateToken`` challenge of a WWW-Authenticate value, in order."""
    out = []
    for item in parse_auth_list(value, "WWW-Authenticate"):
        if item.scheme.lower() != SCHEME.lower():
            continue
        if item.token68 is not None:
            raise FormatError(CHECK, "PrivateToken challenge with token68 instead of "
                              "parameters", field="WWW-Authenticate", got=item.token68[:40])
        challenge = item.param("challenge")
        if challenge is None:
            raise FormatError(CHECK, "PrivateToken challenge without 'challenge'",
                              field="challenge")
        token_key = item.param("token-key")
        max_age = item.param("max-age")
        out.append(PrivateTokenChallenge(
            challenge=b64url_decode(challenge, "challenge"),
            token_key=None if token_key is None else b64url_decode(token_key, "token-key"),
            max_age=None if max_age is None else _decimal(max_age, "max-age")))
    return out


def www_authenticate(challenges: list[PrivateTokenChallenge]) -> str:
    """The WWW-Authenticate value for these challenges (most preferred first)."""
    if not challenges:
        raise FormatError(CHECK, "no challenge to send", field="WWW-Authenticate")
    return ", ".join(c.header_value() for c in challenges)


# --------------------------------------------------------------------------------------------
# Authorization: PrivateToken token=... (RFC 9577 §2.2.2)


def parse_authorization(value: str) -> bytes:
    """The raw Token of an ``Authorization: PrivateToken token=...`` value."""
    items = parse_auth_list(value, "Authorization")
    if len(items) != 1:
        raise FormatError(CHECK, "Authorization carries exactly one credential",
                          field="Authorization", got=len(items), want=1)
    item = items[0]
    if item.scheme.lower() != SCHEME.lower():
        raise FormatError(CHECK, "not the PrivateToken scheme", field="Authorization",
                          got=item.scheme, want=SCHEME)
    token = item.param("token")
    if token is None:
        raise FormatError(CHECK, "PrivateToken credential without 'token'", field="token")
    return b64url_decode(token, "token")


def authorization(token: bytes) -> str:
    """The Authorization value presenting ``token`` (an encoded Token)."""
    return f"{SCHEME} token={_quote(b64url_encode(token))}"


# --------------------------------------------------------------------------------------------
# Issuer directory (RFC 9578 §4)


@dataclass(frozen=True)
class TokenKeyEntry:
    """One ``token-keys`` entry: token type, the encoded key, and ``not-before`` if given."""

    token_type: int
    token_key: bytes
    not_before: int | None = None


@dataclass(frozen=True)
class IssuerDirectory:
    issuer_request_uri: str
    token_keys: tuple[TokenKeyEntry, ...]

    def encode(self) -> bytes:
        keys = []
        for entry in self.token_keys:
            item: dict[str, Any] = {"token-type": entry.token_type,
                                    "token-key": b64url_encode(entry.token_key)}
            if entry.not_before is not None:
                item["not-before"] = entry.not_before
            keys.append(item)
        doc = {"issuer-request-uri": self.issuer_request_uri, "token-keys": keys}
        return json.dumps(doc, indent=2).encode("utf-8") + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> IssuerDirectory:
        if len(data) > MAX_DIRECTORY_LEN:
            raise FormatError(CHECK, "issuer directory too large", field="directory",
                              got=len(data), want=f"<= {MAX_DIRECTORY_LEN}")
        doc = strict_json(data, error=FormatError, check=CHECK, what="issuer directory",
                          field="directory")
        if not isinstance(doc, dict):
            raise FormatError(CHECK, "issuer directory is not a JSON object", field="directory")
        uri = doc.get("issuer-request-uri")
        if not isinstance(uri, str) or not uri:
            raise FormatError(CHECK, "issuer-request-uri missing or not a string",
                              field="issuer-request-uri", got=repr(uri)[:64])
        keys = doc.get("token-keys")
        if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_TOKEN_KEYS:
            raise FormatError(CHECK, f"token-keys must be a list of 1..{MAX_TOKEN_KEYS} keys",
                              field="token-keys", got=repr(keys)[:64])
        return cls(issuer_request_uri=uri, token_keys=tuple(_key_entry(k) for k in keys))


def _uint(value: Any, field: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FormatError(CHECK, f"must be an integer 0..{limit}", field=field,
                          got=repr(value)[:32])
    return value


def _key_entry(item: Any) -> TokenKeyEntry:
    if not isinstance(item, dict):
        raise FormatError(CHECK, "token-keys entry is not an object", field="token-keys")
    key = item.get("token-key")
    if not isinstance(key, str):
        raise FormatError(CHECK, "token-key missing or not a string", field="token-key")
    not_before = item.get("not-before")
    return TokenKeyEntry(
        token_type=_uint(item.get("token-type"), "token-type", 0xFFFF),
        token_key=b64url_decode(key, "token-key"),
        not_before=None if not_before is None else _uint(not_before, "not-before", 2**63 - 1))
