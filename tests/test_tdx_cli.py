"""`verifier tdx` end to end: real vectors with per-item times, JSON transcript, exit codes;
simulated evidence through a fake PCS; the CCEL event log replayed in the pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.formats.ccel import parse_event_log
from attest.simulate.fake_service import FakeService, serve
from tests.support.log_fixtures import policy_toml
from tests.support.tdx_support import (
    GTG,
    SIM_NOW,
    read,
    sim,
    sim_collateral,
    sim_root,
    verify_judged,
)
from tests.support.vectors import vector_path
from verifier.cli import main
from verifier.tdx.collateral import VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.rtmr import replay


def v(name: str) -> str:
    return str(vector_path("tdx", GTG, name))


V5_ARGS = [v("quote_v5_sample.dat"), "--tcb-info", v("sample_tcbinfo_response_v5"),
           "--qe-identity", v("sample_qeIdentity_response"),
           "--tcb-signing-chain", v("tcb_info_issuer_chain.pem"), "--pck-crl", v("pckcrl"),
           "--pck-crl-chain", v("pck_crl_issuer_chain.pem"), "--root-crl", v("rootcrl.der"),
           "--offline", "--at", "2026-02-03", "--at-item", "tcb_signing_chain=2025-05-01",
           "--at-item", "qe_identity=2023-07-01"]

STALE_WAIVERS = ["tdx.pck_crl.validity", "tdx.root_crl.validity"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["tdx", *args])
    return result.exit_code, result.output


def test_v5_with_per_item_times_and_waived_crls(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(top={"waive": STALE_WAIVERS}, extra="[tdx]\n"))
    code, out = invoke(*V5_ARGS, "--policy", str(policy), "--verbose")
    assert code == 0, out
    assert "TCB status           UpToDate" in out
    assert re.search(r"tdx\.root_crl\.validity +waived +stale, waived by name", out)
    assert re.search(r"tdx\.pck_crl\.validity +waived +stale, waived by name", out)
    assert "MRTD                 7348651a34b2d2d3" in out  # the fields: --verbose
    # the verdict, then the input's sigstore-style one-liner last
    assert out.rstrip().splitlines()[-2:] == ["verdict: accepted", f"OK: {V5_ARGS[0]}"]


def test_json_transcript_records_times_and_waivers(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(top={"waive": STALE_WAIVERS}, extra="[tdx]\n"))
    code, out = invoke(*V5_ARGS, "--policy", str(policy), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["verdict"] == "accepted" and doc["tcb"]["status"] == "UpToDate"
    assert doc["times"]["tcb_signing_chain"] == "2025-05-01T00:00:00+00:00"
    results = {s["check"]: s["result"] for s in doc["steps"]}
    assert results["tdx.root_crl.validity"] == "waived"
    assert doc["quote"]["TEE_TCB_SVN2"].startswith("0d0104")


def test_stale_crl_without_waiver_exits_8() -> None:
    code, out = invoke(*V5_ARGS)
    assert code == 8  # ExitStatus.STALE: stale collateral is not forged evidence
    assert "tdx.root_crl.validity" in out and "verdict: refused" in out
    stdout = CliRunner().invoke(main, ["tdx", *V5_ARGS]).stdout
    assert stdout.splitlines()[-1].startswith(f"FAIL: {V5_ARGS[0]}: tdx.")


def test_spr_e4_no_matching_tcb_level_exits_2() -> None:
    code, out = invoke(v("tdx_prod_quote_SPR_E4.dat"), "--tcb-info", v("sample_tcbInfo_response"),
                       "--qe-identity", v("sample_qeIdentity_response"),
                       "--tcb-signing-chain", v("tcb_info_issuer_chain.pem"),
                       "--pck-crl", v("pckcrl"), "--pck-crl-chain", v("pck_crl_issuer_chain.pem"),
                       "--root-crl", v("rootcrl.der"), "--at", "2023-06-20", "--offline")
    assert code == 2 and "no matching TCB level" in out


def test_policy_refusal_exits_5_and_bad_policy_exits_4(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(policy_toml(top={"waive": STALE_WAIVERS},
                                 extra=f'[tdx]\nmrtd = ["{"00" * 48}"]\nallow_debug = false\n'))
    code, out = invoke(*V5_ARGS, "--policy", str(policy))
    assert code == 5 and "MRTD" in out
    policy.write_text(policy_toml(extra="[tdx]\nmrtd_typo = []\n"))
    assert invoke(*V5_ARGS, "--policy", str(policy))[0] == 4


def test_malformed_quote_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "q.dat"
    bad.write_bytes(read("quote_v5_sample.dat")[:100])
    code, out = invoke(str(bad), "--offline")
    assert code == 2 and "tdx.quote.format" in out


def test_offline_without_collateral_exits_3() -> None:
    code, out = invoke(v("ccel_cos-113-tdx-quote.dat"), "--offline")
    assert code == 3 and "tdx.collateral.fetch" in out


def test_simulated_quote_through_a_fake_pcs(tmp_path: Path) -> None:
    s = sim()
    quote = tmp_path / "q.dat"
    quote.write_bytes(s.quote(version=5).to_bytes())
    root = tmp_path / "root.pem"
    root.write_bytes(s.root_pem)
    with serve(FakeService(s.pcs_routes())) as base:
        args = [str(quote), "--pcs-url", base, "--root-crl-url", base + "/IntelSGXRootCA.der",
                "--at", SIM_NOW.isoformat(), "--cache", str(tmp_path / "cache")]
        # Without the simulator's root explicitly trusted: refused (chain).
        code, out = invoke(*args)
        assert code == 2 and "tdx.pck.chain" in out
        code, out = invoke(*args, "--unsafe-trust-root", str(root))
        assert code == 0, out
    # The cache is warm: offline works with the PCS gone.
    code, out = invoke(*args, "--unsafe-trust-root", str(root), "--offline")
    assert code == 0, out


def test_event_log_replay_in_the_pipeline() -> None:
    """A simulated quote carrying the GCP log's RTMRs: the replay step passes and exposes the
    events; a quote with other RTMRs fails tdx.rtmr.replay."""
    log_bytes = read("ccel_ccel_data.dat")
    rtmrs = replay(parse_event_log(log_bytes)).rtmrs
    s = sim()
    good = s.quote(body=s.body(rtmr0=rtmrs[0], rtmr1=rtmrs[1], rtmr2=rtmrs[2])).to_bytes()
    kwargs = {"roots": [sim_root(s)], "times": VerificationTimes.uniform(SIM_NOW)}
    result = verify_judged(good, sim_collateral(s), event_log=log_bytes, **kwargs)
    assert result.rtmr_replay is not None
    assert [x.check for x in result.transcript.steps][-2:] == ["tdx.rtmr.replay", "tdx.policy"]
    assert sum(len(e) for e in result.rtmr_replay.events_per_rtmr) == 43
    from transparency_log.common.errors import VerificationError

    with pytest.raises(VerificationError) as err:
        verify_tdx_evidence(s.quote().to_bytes(), sim_collateral(s), event_log=log_bytes,
                            **kwargs)
    assert err.value.check == "tdx.rtmr.replay"


def test_policy_can_require_named_events() -> None:
    from dataclasses import replace as dc_replace

    from attest.formats.ccel import ALG_SHA384
    from transparency_log.common.errors import PolicyError
    from verifier.tdx.policy import TdxPolicy

    log_bytes = read("ccel_ccel_data.dat")
    log = parse_event_log(log_bytes)
    rtmrs = replay(log).rtmrs
    s = sim()
    quote = s.quote(body=s.body(rtmr0=rtmrs[0], rtmr1=rtmrs[1], rtmr2=rtmrs[2])).to_bytes()
    wanted = next(e for e in log.events if e.mr_index == 2).digest(ALG_SHA384)
    assert wanted is not None
    kwargs = {"roots": [sim_root(s)], "times": VerificationTimes.uniform(SIM_NOW)}
    policy = TdxPolicy(required_event_digests=(wanted,))
    verify_judged(quote, sim_collateral(s), event_log=log_bytes, policy=policy, **kwargs)
    with pytest.raises(PolicyError) as err:
        verify_judged(quote, sim_collateral(s), event_log=log_bytes,
                      policy=dc_replace(policy, required_event_digests=(bytes(48),)), **kwargs)
    assert [f.check for f in err.value.failures] == ["tdx.policy.events"]
    with pytest.raises(PolicyError):
        verify_judged(quote, sim_collateral(s), policy=policy, **kwargs)
