"""Property fuzzing of every parser (issue 16 part 8; docs/fuzzing.md).

Each target in tests/support/fuzz_targets.py gets mutations of its seeds (real vectors first); the
only acceptable outcomes are a value or one of our errors with a check id. Anything else is
a crash that hypothesis shrinks and reports. The seeds themselves must parse (a fuzz target
whose seeds are refused fuzzes nothing but its first check).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.support import fuzz_targets
from tests.support.fuzz_support import fuzz_settings, mutated, run_parser
from tests.support.fuzz_targets import PARSERS
from transparency_log.common.errors import AttestlogError, FormatError
from verifier.gpu.nras import parse_nras_answer
from verifier.snp.chain import load_key_certificate
from verifier.snp.crl import load_crl as load_snp_crl

_BY_NAME = {t.name: t for t in PARSERS}


@pytest.mark.parametrize("name", sorted(_BY_NAME))
def test_seeds_are_accepted(name: str) -> None:
    target = _BY_NAME[name]
    seeds = target.seeds()
    assert seeds, f"{name}: no seeds"
    for i, seed in enumerate(seeds):
        assert not isinstance(run_parser(target.fn, seed), AttestlogError), f"{name} seed {i}"


@pytest.mark.parametrize("name", sorted(_BY_NAME))
@fuzz_settings(40)
@given(data=st.data())
def test_no_parser_crashes(name: str, data: st.DataObject) -> None:
    target = _BY_NAME[name]
    blob = data.draw(mutated(target.seeds(), target.tokens), label="input")
    assume(target.exclude is None or not target.exclude(blob))
    run_parser(target.fn, blob)


# --------------------------------------------------------------------------- crashes found
# Each input below escaped our error hierarchy before its fix; the attack is built here.


def _crl_with_version(version: int) -> bytes:
    crl = bytearray(fuzz_targets.crls()[0])
    at = crl.index(b"\x02\x01\x01")  # TBSCertList.version: v2 (RFC 5280 §5.1.2.1)
    crl[at + 2] = version
    return bytes(crl)


@pytest.mark.parametrize("version", [0, 7])
def test_crl_with_an_unknown_version_is_a_format_error(version: int) -> None:
    # cryptography raises InvalidVersion (not a ValueError) for these
    data = _crl_with_version(version)
    with pytest.raises(FormatError) as tdx:
        fuzz_targets.tdx_crl(data)
    assert tdx.value.check == "tdx.crl.format"
    with pytest.raises(FormatError) as snp:
        load_snp_crl(data)
    assert snp.value.check == "snp.crl"


def test_certificate_with_an_unknown_version_is_a_format_error() -> None:
    der = bytearray(fuzz_targets.vceks()[0])
    at = der.index(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT Version v3 (RFC 5280 §4.1.2.1)
    der[at + 4] = 9
    with pytest.raises(FormatError) as err:
        load_key_certificate(bytes(der), "VCEK")
    assert err.value.check == "snp.vcek.format"


@pytest.mark.parametrize("prefix", ["\udce5", "é"])
def test_nras_token_that_is_not_ascii_is_a_format_error(prefix: str) -> None:
    # a JSON NRAS answer can carry any string, lone surrogates included ("\udce5")
    token = prefix + fuzz_targets.nras_tokens()[0].decode()[1:]
    answer = json.dumps([["JWT", token], {}]).encode()
    overall, _ = parse_nras_answer(answer)
    with pytest.raises(FormatError) as err:
        fuzz_targets.nras_token(overall.encode("utf-8", "surrogatepass"))
    assert err.value.check == "gpu.nras.format"
    assert "not ASCII" in err.value.message
