"""``[private]`` of the policy file (docs/policy.md, "[private]"): how a client sends private
requests (``verifier request``, :class:`verifier.private.PrivateClient`; issue 13).

- ``min_nodes`` (integer 1..4096, default 3): the client refuses to send (check
  ``private.min_nodes``) when fewer nodes than this verified and attest at least one GPU.
  A router that withholds honest nodes from its directory can raise the share of requests
  its own nodes get at most to ``ΣC(T) / (ΣC(T) + the honest capacity it must still list)``;
  with ``min_nodes`` the honest nodes it must list are at least ``min_nodes - |T|``
  (docs/threats.md, "Non-targetability").
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.formats.node_directory import MAX_NODES
from verifier.policy_base import StrictTable, int_in

__all__ = ["DEFAULT_MIN_NODES", "PrivatePolicy"]

DEFAULT_MIN_NODES = 3


@dataclass(frozen=True)
class PrivatePolicy:
    """``[private]``: ``min_nodes``, the fewest verified nodes a client will choose among."""

    min_nodes: int = DEFAULT_MIN_NODES

    @classmethod
    def from_table(cls, t: StrictTable) -> PrivatePolicy:
        policy = cls(int_in(t, "private", "min_nodes", 1, MAX_NODES, DEFAULT_MIN_NODES))
        t.finish()
        return policy
