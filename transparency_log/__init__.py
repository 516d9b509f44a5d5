"""transparency_log: a generic RFC 6962 / C2SP transparency log.

It logs opaque entries and knows nothing about attestation (DESIGN.md, "Layout").
"""
