"""NVIDIA GPU evidence: SPDM report, device chain, OCSP, RIMs, NRAS tokens, policy (issue 5)."""
