"""Intel TDX: quote authenticity, collateral (TCB Info, QE Identity, CRLs), TCB status, policy.

Authenticity: :func:`verifier.tdx.evidence.verify_tdx_evidence` (no policy); policy:
:meth:`verifier.tdx.policy.TdxPolicy.check`; the pipeline's stage:
:func:`verifier.tdx.stage.run_tdx_stage`. The PCS JSON parser is attest/formats/intel_pcs.py.
"""
