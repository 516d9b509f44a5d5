"""Core formats and math of a transparency log: RFC 6962 Merkle trees, C2SP signed notes,
checkpoints, cosignatures, tiles, tlog-proof and tlog-policy. Pure: no storage, no network."""
