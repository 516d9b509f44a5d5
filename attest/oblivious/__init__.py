"""The untrusted servers of the private-request path (issue 13; docs/private.md).

- :mod:`attest.oblivious.issuer_service`: ``attest issuer serve``, a Privacy Pass issuer
  (token type 0x0002, RFC 9578) that authenticates accounts and keeps nothing linking a
  token to one.
- :mod:`attest.oblivious.router_service`: ``attest router``, publishes the node directory
  (attest/formats/node_directory.py), checks and spends one token per request, forwards the
  encapsulated request unchanged to the node the client chose. Never decrypts.
- :mod:`attest.oblivious.relay_service`: ``attest relay``, an RFC 9458 oblivious relay
  resource in front of one router: strips what identifies the client, rate-limits.
- :mod:`attest.oblivious.spent_tokens`: the router's spent-token store (SQLite; PostgreSQL in
  :mod:`attest.oblivious.spent_tokens_postgres` for several routers).
"""
