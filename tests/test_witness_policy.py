"""C2SP tlog-policy parsing (one test per rule) and the witness quorum check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import (
    CosignatureSigner,
    cosignature,
    generate_cosigner_keys,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import (
    NoteSignature,
    Signer,
    append_signatures,
    generate_keys,
)
from transparency_log.core.witness_policy import (
    MAX_ENTRIES,
    PolicyGroup,
    check_quorum,
    parse_witness_policy,
)

LOG_SKEY, LOG_VKEY = generate_keys("example.com/log", seed=bytes(32))
LOG = Signer(LOG_SKEY)
KEYS = {n: generate_cosigner_keys(f"{n.lower()}.example", seed=bytes([i + 1]) * 32)
        for i, n in enumerate(["X1", "X2", "X3", "Y1", "Y2", "Y3"])}
SIGNERS = {n: CosignatureSigner(k[0]) for n, k in KEYS.items()}
CP = Checkpoint("example.com/log", 10, bytes(range(32)))
TEXT = CP.to_text()

SPEC_EXAMPLE = f"""\
# The example policy of c2sp.org/tlog-policy, with real keys.
log {LOG_VKEY}

witness X1 {KEYS["X1"][1]}
witness X2 {KEYS["X2"][1]}
witness X3 {KEYS["X3"][1]}
group X-witnesses 2 X1 X2 X3

witness Y1 {KEYS["Y1"][1]}
witness Y2 {KEYS["Y2"][1]}  https://y2.example/witness
  witness	Y3 {KEYS["Y3"][1]}   \t
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
""".encode()
POLICY = parse_witness_policy(SPEC_EXAMPLE)


def _cosigned(*names: str, ts: int = 1700000000) -> bytes:
    msg = sign_checkpoint(CP, LOG)
    return append_signatures(msg, [cosignature(TEXT, SIGNERS[n], ts) for n in names])


def _policy(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


W = {n: f"witness {n} {KEYS[n][1]}" for n in KEYS}


# --- parsing ---------------------------------------------------------------------------------


def test_spec_example_parses() -> None:
    assert [w.name for w in POLICY.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert POLICY.witnesses[4].url == "https://y2.example/witness"
    assert POLICY.groups == (
        PolicyGroup("X-witnesses", 2, ("X1", "X2", "X3")),
        PolicyGroup("Y-witnesses", 1, ("Y1", "Y2", "Y3"), "any"),
        PolicyGroup("X-and-Y", 2, ("X-witnesses", "Y-witnesses"), "all"),
    )
    assert POLICY.quorum == "X-and-Y"
    assert [v.name for v in POLICY.log_verifiers] == ["example.com/log"]


def test_round_trip() -> None:
    again = parse_witness_policy(POLICY.to_text())
    assert again == POLICY
    assert again.to_text() == POLICY.to_text()


def test_quorum_none_and_no_logs() -> None:
    policy = parse_witness_policy(b"quorum none\n")
    assert policy.logs == () and policy.quorum == "none"
    assert parse_witness_policy(policy.to_text()) == policy


def test_tessera_type01_witness_vkeys_accepted() -> None:
    from tests.support.vectors import load_json_vector

    t = load_json_vector("tlog", "notes", "tessera_test_witness_keys.json")
    text = _policy(f"log {t['log_vkey']}",
                   *(f"witness {n} {k['vkey']}" for n, k in t["witnesses"].items()),
                   "group all3 all Wit1 Wit2 Wit3", "quorum all3")
    policy = parse_witness_policy(text)
    assert [v.key_id.hex() for v in policy.witness_verifiers] == [
        "9b3fb2d5", "38153445", "233cf275"]


BAD = {
    "not bytes": "text",
    "control character": b"quorum none\r\n",
    "DEL": b"quorum none\x7f\n",
    "NUL": b"# \x00\nquorum none\n",
    "no final newline": b"quorum none",
    "not utf-8": b"# \xff\nquorum none\n",
    "too large": b"#" * 1_000_001 + b"\nquorum none\n",
    "unknown keyword": _policy("logs x", "quorum none"),
    "empty file": b"",
    "comments only": b"# nothing\n",
    "log arg count": _policy("log", "quorum none"),
    "log extra args": _policy(f"log {LOG_VKEY} https://a b", "quorum none"),
    "log bad vkey": _policy("log example.com/log+00000000+AAAA", "quorum none"),
    "log cosigner type": _policy(f"log {KEYS['X1'][1]}", "quorum none"),
    "duplicate log key": _policy(f"log {LOG_VKEY}", f"log {LOG_VKEY}", "quorum none"),
    "duplicate log key other name": _policy(
        f"log {LOG_VKEY}", f"log {generate_keys('other.example', seed=bytes(32))[1]}",
        "quorum none"),
    "witness arg count": _policy("witness X1", "quorum none"),
    "witness named none": _policy(f"witness none {KEYS['X1'][1]}", "quorum none"),
    "witness name twice": _policy(W["X1"], f"witness X1 {KEYS['X2'][1]}", "quorum none"),
    "witness bad vkey": _policy("witness X1 x.example+00000000+AAAA", "quorum none"),
    "witness note-only type": _policy(
        "witness X1 " + Verifier(  # an ECDSA (0x02) vkey cannot be a cosigner key
            "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBo"
            "gSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=").vkey,
        "quorum none"),
    "duplicate witness key": _policy(
        W["X1"], "witness Z " + generate_cosigner_keys("z.example", seed=bytes([1]) * 32)[1],
        "quorum none"),
    "group too short": _policy(W["X1"], "group g 1", "quorum g"),
    "group undefined member": _policy(W["X1"], "group g any X1 X2", "quorum g"),
    "group member defined later": _policy("group g any X1", W["X1"], "quorum g"),
    "group member none": _policy(W["X1"], "group g any X1 none", "quorum g"),
    "group member twice": _policy(W["X1"], "group g 1 X1 X1", "quorum g"),
    "group k leading zero": _policy(W["X1"], "group g 01 X1", "quorum g"),
    "group k plus": _policy(W["X1"], "group g +1 X1", "quorum g"),
    "group k word": _policy(W["X1"], "group g one X1", "quorum g"),
    "group k zero": _policy(W["X1"], "group g 0 X1", "quorum g"),
    "group k above n": _policy(W["X1"], "group g 2 X1", "quorum g"),
    "group name taken": _policy(W["X1"], "group X1 any X1", "quorum X1"),
    "group named none": _policy(W["X1"], "group none any X1", "quorum none"),
    "no quorum": _policy(W["X1"]),
    "two quorums": _policy(W["X1"], "quorum X1", "quorum X1"),
    "quorum arg count": _policy(W["X1"], "quorum X1 X1"),
    "quorum undefined": _policy(W["X1"], "quorum X2"),
    "quorum before definition": _policy("quorum X1", W["X1"]),
    "too many groups": _policy(W["X1"], *(f"group g{i} any X1" for i in range(MAX_ENTRIES + 1)),
                               "quorum none"),
}


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_bad_policy(text: bytes) -> None:
    with pytest.raises(TrustConfigError) as info:
        parse_witness_policy(text)
    assert info.value.check == "log.policy"


def test_entry_caps_accept_the_maximum() -> None:
    groups = (f"group g{i} any X1" for i in range(MAX_ENTRIES))
    assert len(parse_witness_policy(_policy(W["X1"], *groups, "quorum none")).groups) == 256


def test_too_many_logs_and_witnesses() -> None:
    logs = [f"log {generate_keys(f'l{i}.example', seed=i.to_bytes(32, 'big'))[1]}"
            for i in range(MAX_ENTRIES + 1)]
    with pytest.raises(TrustConfigError, match="too many logs"):
        parse_witness_policy(_policy(*logs, "quorum none"))
    wits = [f"witness w{i} {generate_cosigner_keys('w', seed=i.to_bytes(32, 'big'))[1]}"
            for i in range(MAX_ENTRIES + 1)]
    with pytest.raises(TrustConfigError, match="too many witnesses"):
        parse_witness_policy(_policy(*wits, "quorum none"))


# --- the quorum check --------------------------------------------------------------------------


def test_quorum_met() -> None:
    result = check_quorum(_cosigned("X1", "X3", "Y2"), POLICY)
    assert result.checkpoint == CP
    assert result.cosigned == {"X1": 1700000000, "X3": 1700000000, "Y2": 1700000000}
    assert {"X-witnesses", "Y-witnesses", "X-and-Y"} <= result.satisfied
    assert result.log_key.startswith("example.com/log+")


@pytest.mark.parametrize("names", [("X1", "X2"), ("X1", "Y1", "Y2"), ()],
                         ids=["no Y", "one X", "nobody"])
def test_quorum_not_met_names_everything(names: tuple[str, ...]) -> None:
    with pytest.raises(VerificationError) as info:
        check_quorum(_cosigned(*names), POLICY)
    err = info.value
    assert err.check == "log.witness.quorum" and err.want == "X-and-Y"
    assert "cosigned by: " + (", ".join(sorted(names)) or "nobody") in err.got
    assert "missing: " in err.got and "unmet groups: " in err.got


def test_single_witness_quorum_and_none() -> None:
    policy = parse_witness_policy(_policy(f"log {LOG_VKEY}", W["X1"], "quorum X1"))
    assert check_quorum(_cosigned("X1"), policy).cosigned == {"X1": 1700000000}
    with pytest.raises(VerificationError, match="quorum"):
        check_quorum(_cosigned("X2"), policy)  # X2 is unknown to this policy: ignored
    none = parse_witness_policy(_policy(f"log {LOG_VKEY}", "quorum none"))
    assert check_quorum(_cosigned(), none).cosigned == {}


def test_same_witness_twice_counts_once() -> None:
    msg = append_signatures(_cosigned("X1"), [cosignature(TEXT, SIGNERS["X1"], 5)])
    policy = parse_witness_policy(_policy(f"log {LOG_VKEY}", W["X1"], W["X2"],
                                          "group g 2 X1 X2", "quorum g"))
    with pytest.raises(VerificationError, match="quorum"):
        check_quorum(msg, policy)


def test_bad_cosignature_from_policy_witness() -> None:
    good = cosignature(TEXT, SIGNERS["X1"], 7)
    bad = NoteSignature(good.name, good.key_id, good.signature[:8] + bytes(64))
    msg = append_signatures(_cosigned("X2", "Y1"), [bad])
    with pytest.raises(SignatureError) as info:
        check_quorum(msg, POLICY)
    assert info.value.check == "log.witness.signature" and "X1" in info.value.got


def test_cosignature_of_another_checkpoint() -> None:
    other = Checkpoint("example.com/log", 11, bytes(32)).to_text()
    msg = append_signatures(_cosigned("X2", "Y1"), [cosignature(other, SIGNERS["X1"], 7)])
    with pytest.raises(SignatureError, match="cosignature"):
        check_quorum(msg, POLICY)


def test_log_signature_missing() -> None:
    other_skey, _ = generate_keys("example.com/log", seed=bytes([9]) * 32)
    msg = sign_checkpoint(CP, Signer(other_skey))
    msg = append_signatures(msg, [cosignature(TEXT, SIGNERS[n], 1) for n in ("X1", "X2", "Y1")])
    with pytest.raises(VerificationError) as info:
        check_quorum(msg, POLICY)
    assert info.value.check == "note.unverified"


def test_log_signature_bad() -> None:
    msg = _cosigned("X1", "X2", "Y1")
    forged = msg.replace(b"\n10\n", b"\n11\n")
    with pytest.raises(SignatureError) as info:
        check_quorum(forged, POLICY)
    assert info.value.check == "note.signature"


def test_log_origin_must_be_key_name() -> None:
    cp = Checkpoint("example.com/other", 1, bytes(32))
    msg = sign_checkpoint(cp, LOG)
    msg = append_signatures(msg, [cosignature(cp.to_text(), SIGNERS[n], 1)
                                  for n in ("X1", "X2", "Y1")])
    with pytest.raises(VerificationError) as info:
        check_quorum(msg, POLICY)
    assert info.value.check == "log.origin"


def test_malformed_note() -> None:
    with pytest.raises(FormatError):
        check_quorum(b"not a note", POLICY)


def test_policy_without_logs_uses_given_key() -> None:
    policy = parse_witness_policy(_policy(W["X1"], "quorum X1"))
    with pytest.raises(TrustConfigError):
        check_quorum(_cosigned("X1"), policy)
    assert check_quorum(_cosigned("X1"), policy, [Verifier(LOG_VKEY)]).cosigned == {
        "X1": 1700000000}


def test_policy_built_in_code_checks_like_a_parsed_one() -> None:
    from transparency_log.core.witness_policy import PolicyLog, PolicyWitness, WitnessPolicy

    policy = WitnessPolicy((PolicyLog(LOG_VKEY),), (PolicyWitness("X1", KEYS["X1"][1]),), (),
                           "X1")
    assert policy == parse_witness_policy(policy.to_text())
    assert check_quorum(_cosigned("X1"), policy).cosigned == {"X1": 1700000000}


@st.composite
def _policies(draw) -> tuple[str, dict[str, tuple[int, list[str]]], str, set[str]]:
    """A random valid policy over the six witnesses, plus a random set of cosigners."""
    names = list(KEYS)
    defined = list(names)
    groups: dict[str, tuple[int, list[str]]] = {}
    for i in range(draw(st.integers(0, 4))):
        members = draw(st.lists(st.sampled_from(defined), min_size=1, max_size=4, unique=True))
        k = draw(st.integers(1, len(members)))
        groups[f"g{i}"] = (k, members)
        defined.append(f"g{i}")
    quorum = draw(st.sampled_from([*defined, "none"]))
    cosigners = set(draw(st.lists(st.sampled_from(names), unique=True)))
    lines = [f"log {LOG_VKEY}", *W.values()]
    lines += [f"group {g} {k} {' '.join(m)}" for g, (k, m) in groups.items()]
    return "\n".join([*lines, f"quorum {quorum}"]) + "\n", groups, quorum, cosigners


def _reference(name: str, groups: dict[str, tuple[int, list[str]]], cosigners: set[str]) -> bool:
    """The tlog-policy definition, evaluated recursively."""
    if name == "none":
        return True
    if name in groups:
        k, members = groups[name]
        return sum(_reference(m, groups, cosigners) for m in members) >= k
    return name in cosigners


@given(_policies())
@settings(max_examples=60, deadline=None)
def test_quorum_matches_the_recursive_definition(case) -> None:
    text, groups, quorum, cosigners = case
    policy = parse_witness_policy(text.encode())
    msg = _cosigned(*sorted(cosigners))
    if _reference(quorum, groups, cosigners):
        assert set(check_quorum(msg, policy).cosigned) == cosigners
    else:
        with pytest.raises(VerificationError, match="quorum"):
            check_quorum(msg, policy)
