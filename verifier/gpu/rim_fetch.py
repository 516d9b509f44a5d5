"""Getting RIMs moved to :mod:`attest.collateral.rim_fetch` (shared with the node agent, which
staples what it fetches); these names are re-exported for the verifier's users. What it
returns is checked by :func:`verifier.gpu.rim_verify.verify_rim`."""

from attest.collateral.rim_fetch import (
    MAX_RIM_JSON,
    NVIDIA_RIM_SERVICE,
    RimSource,
    decode_rim_service_reply,
    driver_rim_id,
    vbios_rim_id,
)

__all__ = ["MAX_RIM_JSON", "NVIDIA_RIM_SERVICE", "RimSource", "decode_rim_service_reply",
           "driver_rim_id", "vbios_rim_id"]
