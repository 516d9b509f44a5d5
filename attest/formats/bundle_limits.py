"""The evidence bundle's limits, names and check ids (docs/formats.md, "Evidence bundle
(CBOR)"): caps on every size and count (house rule 2), the evidence types and collateral roles.
"""

from __future__ import annotations

import re

BUNDLE_VERSION = 1

# Caps (house rule 2). Sizes in bytes; every blob is also at least 1 byte.
MAX_BUNDLE_SIZE = 4 << 20  # whole encoded bundle
MAX_DATA_ITEMS = 8192  # CBOR data items in a bundle (33 items, 64 collateral: ~1500)
MAX_DEPTH = 8  # container nesting (the schema itself needs 4)
MIN_NONCE = 32
MAX_NONCE = 64
MAX_NODE_KEY = 2048  # DER SPKI; RSA-8192 is ~1.1 KiB
SNP_REPORT_SIZE = 0x4A0  # 1184: SEV-SNP ABI spec (#56860) Table 22, ATTESTATION_REPORT
MAX_CERT = 8192  # one DER certificate (AMD ARK/ASK are RSA-4096, ~1.6 KiB)
MAX_TDX_QUOTE = 65536  # quote v4/v5 with its PCK certificate chain inside
MAX_GPU_REPORT = 32768  # SPDM GET_MEASUREMENTS response + signature (H100: 4117 bytes)
MAX_GPU_CERT_CHAIN = 65536  # PEM device certificate chain
MAX_GPU_ITEMS = 32
MAX_GPU_INDEX = 255
MAX_GPU_ATTACHED = 256
MAX_OCSP_PER_GPU = 8
MAX_RELEASE = 65535  # a log entry (attest.release.statement.MAX_ENTRY_SIZE)
MAX_TLOG_PROOF = 65536
MAX_OHTTP_KEYS = 4096  # application/ohttp-keys: one X25519 config with 2 suites is 49 bytes
MAX_SIGSTORE_BUNDLE = 65536  # a Sigstore bundle v0.1-v0.3 JSON (the vectors': 5.6-11 KiB)
MAX_COLLATERAL_ENTRIES = 64
MAX_COLLATERAL_NAME = 128
MAX_BLOB = 1 << 20  # one collateral blob (a RIM is ~20 KiB, TCB info ~10 KiB)

TYPE_SNP = "sev-snp"
TYPE_TDX = "tdx"
TYPE_GPU = "nvidia-gpu"
EVIDENCE_TYPES = (TYPE_SNP, TYPE_TDX, TYPE_GPU)

SNP_CERT_ROLES = ("ark", "ask", "asvk", "vcek", "vlek")
SNP_COLLATERAL_ROLES = ("crl",)
TDX_COLLATERAL_ROLES = (
    "tcb_info", "tcb_info_issuer_chain", "qe_identity", "qe_identity_issuer_chain",
    "pck_crl", "pck_crl_issuer_chain", "root_crl",
)
GPU_RIM_ROLES = ("driver", "vbios")
# nvmlSystemGetConfComputeState as the node reads it; "absent": no NVIDIA driver/GPU at all.
CC_MODES = ("absent", "off", "on", "devtools")

COLLATERAL_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._:/+-]*")

CHECK_SIZE = "bundle.size"
CHECK_CBOR = "bundle.cbor"
CHECK_CANONICAL = "bundle.canonical"
CHECK_SCHEMA = "bundle.schema"
