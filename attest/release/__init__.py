"""Release entries: RFC 8785 canonical JSON, in-toto Statement v1 releases and revocations,
DSSE envelopes signed by release keys, and optional Sigstore bundles from CI."""
