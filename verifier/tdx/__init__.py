"""Intel TDX: quote authenticity, collateral (TCB Info, QE Identity, CRLs), TCB status, policy.

Public entry point: :func:`verifier.tdx.evidence.verify_tdx_evidence`.
"""
