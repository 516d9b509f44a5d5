"""C2SP tlog-policy (c2sp.org/tlog-policy): which logs and witness cosignatures to trust.

File format (tlog-policy §"Policy file syntax and structure"), one item per line::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <member>...
    quorum <name>|none

- Items are separated by spaces and tabs only; leading/trailing whitespace is allowed; empty
  lines and ``#`` comment lines are ignored. Allowed octets: 0x09, 0x0A, 0x20-0x7E, 0x80-0xFF
  (§"Character set"). Every line ends in a newline.
- A group or the quorum may only name witnesses/groups defined on *preceding* lines; names
  share one namespace; ``none`` is predefined and is not a valid member; each member appears
  at most once in a group; ``1 <= k <= n`` with ``k`` a canonical decimal; exactly one
  ``quorum`` line (§"Defining a witness group", §"Defining the quorum").
- Two logs (or two witnesses) that wrap the same public key are duplicates and refused
  (§"Public key representation").
- Log vkeys are note keys (:class:`transparency_log.core.key_types.Verifier`), witness vkeys are
  cosignature keys of type 0x04 or 0x01
  (:class:`transparency_log.core.cosignature.CosignatureVerifier`).

Stricter than the spec (documented in docs/formats.md): the file must be UTF-8 (the spec only
recommends it); at most :data:`MAX_ENTRIES` logs, witnesses and groups each (the spec asks
for at least 32) and :data:`MAX_POLICY_SIZE` bytes. Any violation is a TrustConfigError with
check ``log.policy``.

:func:`check_quorum` decides whether a cosigned checkpoint is trusted: a log signature from a
policy log (or the given log key) whose key name is the checkpoint origin, then every
cosignature of a policy witness verified, then the quorum rule. A failing cosignature from a
known witness is a SignatureError ``log.witness.signature``; an unmet quorum is a
VerificationError ``log.witness.quorum`` naming who cosigned and which groups fell short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.common.parse_cache import frozen_value
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint, parse_decimal
from transparency_log.core.cosignature import CosignatureVerifier
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Note, NoteVerifier, open_note

__all__ = [
    "MAX_ENTRIES",
    "MAX_POLICY_SIZE",
    "PolicyGroup",
    "PolicyLog",
    "PolicyWitness",
    "QuorumResult",
    "WitnessPolicy",
    "check_cosignatures",
    "check_quorum",
    "parse_witness_policy",
    "policy_lists_log",
]

CHECK_POLICY = "log.policy"
CHECK_QUORUM = "log.witness.quorum"
CHECK_WITNESS_SIGNATURE = "log.witness.signature"
CHECK_LOG_ORIGIN = "log.origin"
NONE = "none"
MAX_ENTRIES = 256
MAX_POLICY_SIZE = 1_000_000
_ALLOWED = frozenset([0x09, 0x0A, *range(0x20, 0x7F), *range(0x80, 0x100)])


@dataclass(frozen=True)
class PolicyLog:
    """A trusted log: its note verifier key and optional URL."""

    vkey: str
    url: str | None = None

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.vkey)


@dataclass(frozen=True)
class PolicyWitness:
    """A witness: policy-local name, cosignature vkey, optional URL."""

    name: str
    vkey: str
    url: str | None = None

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.vkey)


@dataclass(frozen=True)
class PolicyGroup:
    """``group name k members...``: witnessed iff at least ``threshold`` members are."""

    name: str
    threshold: int
    members: tuple[str, ...]
    spelling: str = ""  # "all", "any" or "" (numeric), kept for a faithful round trip


@dataclass(frozen=True)
class WitnessPolicy:
    """A parsed tlog-policy file."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str

    def to_text(self) -> bytes:
        """The policy file (parse_witness_policy(to_text()) == self)."""
        out: list[str] = []
        for lg in self.logs:
            out.append(" ".join(["log", lg.vkey, *([lg.url] if lg.url else [])]))
        for w in self.witnesses:
            out.append(" ".join(["witness", w.name, w.vkey, *([w.url] if w.url else [])]))
        for g in self.groups:
            k = g.spelling or str(g.threshold)
            out.append(" ".join(["group", g.name, k, *g.members]))
        out.append(f"quorum {self.quorum}")
        return "".join(line + "\n" for line in out).encode()

    @cached_property
    def log_verifiers(self) -> tuple[Verifier, ...]:
        """The logs' note verifiers, in file order."""
        return tuple(lg.verifier for lg in self.logs)

    @cached_property
    def witness_verifiers(self) -> tuple[CosignatureVerifier, ...]:
        """The witnesses' cosignature verifiers, in file order."""
        return tuple(w.verifier for w in self.witnesses)

    @cached_property
    def witnesses_by_key(self) -> Mapping[tuple[str, bytes], tuple[PolicyWitness,
                                                                   CosignatureVerifier]]:
        """``(key name, key ID) -> (witness, its verifier)``, built once per policy (the
        policy is frozen), read-only."""
        return MappingProxyType({(v.name, v.key_id): (w, v) for w, v in
                                 zip(self.witnesses, self.witness_verifiers, strict=True)})


def _fail(lineno: int, message: str, got: object = None, want: object = None) -> TrustConfigError:
    return TrustConfigError(CHECK_POLICY, message, field=f"line {lineno}", got=got, want=want)


def _key_error(lineno: int, err: TrustConfigError) -> TrustConfigError:
    return TrustConfigError(CHECK_POLICY, f"bad vkey: {err.message}", field=f"line {lineno}",
                            got=err.got, want=err.want)


def parse_witness_policy(data: bytes) -> WitnessPolicy:
    """Parse a tlog-policy file strictly; TrustConfigError ``log.policy`` on any problem."""
    if not isinstance(data, bytes | bytearray):
        raise TrustConfigError(CHECK_POLICY, "policy must be bytes", got=type(data).__name__)
    if len(data) > MAX_POLICY_SIZE:
        raise TrustConfigError(CHECK_POLICY, "policy file too large", got=len(data),
                               want=f"<= {MAX_POLICY_SIZE} bytes")
    for i, b in enumerate(data):
        if b not in _ALLOWED:
            lineno = data.count(b"\n", 0, i) + 1
            raise _fail(lineno, "forbidden control character", got=f"0x{b:02x}",
                        want="tab, newline, 0x20-0x7e, 0x80-0xff")
    if data and not data.endswith(b"\n"):
        raise TrustConfigError(CHECK_POLICY, "last line must end with a newline",
                               field="policy")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise TrustConfigError(CHECK_POLICY, "policy file is not UTF-8",
                               got=f"byte offset {err.start}") from None

    logs: list[PolicyLog] = []
    log_verifiers: list[Verifier] = []
    witnesses: list[PolicyWitness] = []
    witness_verifiers: list[CosignatureVerifier] = []
    groups: list[PolicyGroup] = []
    names: set[str] = set()
    quorum: str | None = None

    for lineno, raw in enumerate(text.split("\n")[:-1], start=1):
        items = raw.replace("\t", " ").split()
        if not items or items[0].startswith("#"):
            continue
        keyword, args = items[0], items[1:]
        if keyword == "log":
            if len(args) not in (1, 2):
                raise _fail(lineno, "log line is: log <vkey> [<url>]", got=len(args))
            try:
                v = Verifier(args[0])
            except TrustConfigError as err:
                raise _key_error(lineno, err) from None
            if any(other.public_key == v.public_key for other in log_verifiers):
                raise _fail(lineno, "duplicate log key", got=args[0])
            logs.append(PolicyLog(args[0], args[1] if len(args) == 2 else None))
            log_verifiers.append(v)
            if len(logs) > MAX_ENTRIES:
                raise _fail(lineno, "too many logs", want=f"<= {MAX_ENTRIES}")
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise _fail(lineno, "witness line is: witness <name> <vkey> [<url>]",
                            got=len(args))
            name = args[0]
            _new_name(lineno, name, names)
            try:
                wv = CosignatureVerifier(args[1])
            except TrustConfigError as err:
                raise _key_error(lineno, err) from None
            if any(other.public_key == wv.public_key for other in witness_verifiers):
                raise _fail(lineno, "duplicate witness key", got=args[1])
            witnesses.append(PolicyWitness(name, args[1], args[2] if len(args) == 3 else None))
            witness_verifiers.append(wv)
            names.add(name)
            if len(witnesses) > MAX_ENTRIES:
                raise _fail(lineno, "too many witnesses", want=f"<= {MAX_ENTRIES}")
        elif keyword == "group":
            groups.append(_parse_group(lineno, args, names))
            names.add(groups[-1].name)
            if len(groups) > MAX_ENTRIES:
                raise _fail(lineno, "too many groups", want=f"<= {MAX_ENTRIES}")
        elif keyword == "quorum":
            if quorum is not None:
                raise _fail(lineno, "more than one quorum line")
            if len(args) != 1:
                raise _fail(lineno, "quorum line is: quorum <name>", got=len(args))
            if args[0] != NONE and args[0] not in names:
                raise _fail(lineno, "quorum names an undefined witness or group", got=args[0])
            quorum = args[0]
        else:
            raise _fail(lineno, "unknown keyword", got=keyword,
                        want="log, witness, group or quorum")
    if quorum is None:
        raise TrustConfigError(CHECK_POLICY, "policy has no quorum line", field="quorum")
    policy = WitnessPolicy(tuple(logs), tuple(witnesses), tuple(groups), quorum)
    policy.__dict__["log_verifiers"] = tuple(log_verifiers)  # already built: fill the cache
    policy.__dict__["witness_verifiers"] = tuple(witness_verifiers)
    return policy


def _new_name(lineno: int, name: str, names: set[str]) -> None:
    if name == NONE:
        raise _fail(lineno, "'none' is predefined and cannot be redefined", got=name)
    if name in names:
        raise _fail(lineno, "name already defined", got=name)


def _parse_group(lineno: int, args: Sequence[str], names: set[str]) -> PolicyGroup:
    if len(args) < 3:
        raise _fail(lineno, "group line is: group <name> all|any|<k> <member>...",
                    got=len(args))
    name, k_text, members = args[0], args[1], tuple(args[2:])
    _new_name(lineno, name, names)
    for m in members:
        if m == NONE:
            raise _fail(lineno, "'none' cannot be a group member", got=m)
        if m not in names:
            raise _fail(lineno, "group member is not defined on a preceding line", got=m)
    if len(set(members)) != len(members):
        raise _fail(lineno, "a name may be listed at most once in a group",
                    got=" ".join(members))
    if k_text == "all":
        return PolicyGroup(name, len(members), members, "all")
    if k_text == "any":
        return PolicyGroup(name, 1, members, "any")
    try:
        k = parse_decimal(k_text, CHECK_POLICY, "threshold")
    except FormatError:
        raise _fail(lineno, "threshold must be all, any or a canonical decimal",
                    got=k_text) from None
    if not 1 <= k <= len(members):
        raise _fail(lineno, "threshold out of range", got=k, want=f"1..{len(members)}")
    return PolicyGroup(name, k, members)


# --------------------------------------------------------------------------------------------
# Checking a cosigned checkpoint against the policy


@dataclass(frozen=True)
class QuorumResult:
    """A checkpoint the policy trusts, with the evidence of why."""

    checkpoint: Checkpoint
    log_key: str  # name+keyid of the log signature that verified
    cosigned: dict[str, int]  # witness name -> cosignature timestamp
    satisfied: frozenset[str]  # witnesses and groups that witnessed the checkpoint
    quorum: str


def _satisfied(policy: WitnessPolicy, cosigned: set[str]) -> set[str]:
    done = set(cosigned)
    for g in policy.groups:  # groups only reference earlier names: one pass suffices
        if sum(m in done for m in g.members) >= g.threshold:
            done.add(g.name)
    return done


def check_quorum(msg: bytes, policy: WitnessPolicy,
                 log_verifiers: Sequence[NoteVerifier] = ()) -> QuorumResult:
    """Decide whether the signed checkpoint ``msg`` is trusted under ``policy``.

    1. Note format (FormatError ``note.format``).
    2. A log signature: from one of the policy's logs, else from ``log_verifiers`` (a
       policy may list no logs); SignatureError ``note.signature`` /
       VerificationError ``note.unverified``.
    3. Checkpoint format; the origin equals the verifying log key's name
       (VerificationError ``log.origin``).
    4. Every cosignature line of a policy witness verifies (SignatureError
       ``log.witness.signature`` otherwise); lines of unknown keys are ignored.
    5. The quorum is met (VerificationError ``log.witness.quorum`` otherwise).
    """
    logs = list(policy.log_verifiers) or list(log_verifiers)
    if not logs:
        raise TrustConfigError(CHECK_POLICY, "no log key: the policy lists no log and none "
                               "was given", field="log")
    note = open_note(msg, logs)
    cp = parse_checkpoint(note.text)
    log_names = {s.name for s in note.sigs}
    if cp.origin not in log_names:
        raise VerificationError(CHECK_LOG_ORIGIN, "checkpoint origin is not the name of the "
                                "log key that signed it", field="origin", got=cp.origin,
                                want=" or ".join(sorted(log_names)))
    return check_cosignatures(note, cp, policy)


def policy_lists_log(policy: WitnessPolicy, verifier: NoteVerifier) -> bool:
    """True iff ``verifier`` is one of the policy's logs (same name, key ID and key)."""
    return any((v.name, v.key_id, v.public_key)
               == (verifier.name, verifier.key_id, getattr(verifier, "public_key", None))
               for v in policy.log_verifiers)


def check_cosignatures(note: Note, cp: Checkpoint, policy: WitnessPolicy) -> QuorumResult:
    """Steps 4 and 5 of :func:`check_quorum`, for a note whose log signature is verified.

    ``note`` must come from :func:`transparency_log.core.note.open_note` with a log key the
    policy accepts, and ``cp`` be its parsed text; witness lines may be in either list.
    """
    text = note.text
    by_key = policy.witnesses_by_key
    cosigned: dict[str, int] = {}
    for sig in [*note.sigs, *note.unverified_sigs]:
        found = by_key.get((sig.name, sig.key_id))
        if found is None:
            continue
        witness, verifier = found
        try:
            ts = verifier.verify_timestamp(text, sig.signature)
        except (SignatureError, FormatError):
            raise SignatureError(CHECK_WITNESS_SIGNATURE, "cosignature from a policy witness "
                                 "does not verify", field="cosignature",
                                 got=f"{witness.name} ({sig.name}+{sig.key_id.hex()})") from None
        cosigned.setdefault(witness.name, ts)
    satisfied = _satisfied(policy, set(cosigned))
    if policy.quorum != NONE and policy.quorum not in satisfied:
        unmet = [f"{g.name} ({sum(m in satisfied for m in g.members)} of {g.threshold} needed)"
                 for g in policy.groups if g.name not in satisfied]
        missing = sorted(w.name for w in policy.witnesses if w.name not in cosigned)
        got = f"cosigned by: {', '.join(sorted(cosigned)) or 'nobody'}"
        if missing:
            got += f"; missing: {', '.join(missing)}"
        if unmet:
            got += f"; unmet groups: {'; '.join(unmet)}"
        raise VerificationError(CHECK_QUORUM, "witness quorum not met", field="quorum",
                                got=got, want=policy.quorum)
    return frozen_value(QuorumResult, {  # no __post_init__: the same as QuorumResult(...)
        "checkpoint": cp, "log_key": ", ".join([f"{s.name}+{s.key_id.hex()}" for s in note.sigs]),
        "cosigned": cosigned, "satisfied": frozenset(satisfied), "quorum": policy.quorum})
