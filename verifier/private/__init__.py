"""The client side of private requests (issue 13; docs/private.md, docs/threats.md):
verify the directory's nodes, choose one with the client's randomness weighted by attested
facts only, send one OHTTP request through the relay with an anonymous token."""

from verifier.private.choice import CHECK_MIN_NODES, Weighted, choose
from verifier.private.client import BUCKETS, Candidate, Outcome, PrivateClient, attested_gpus
from verifier.private.fetch import IssuerTokens, KeyConfigSource

__all__ = ["BUCKETS", "CHECK_MIN_NODES", "Candidate", "IssuerTokens", "KeyConfigSource",
           "Outcome", "PrivateClient", "Weighted", "attested_gpus", "choose"]
