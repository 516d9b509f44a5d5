"""Private requests (issue 13): what both the node's gateway and the client need.

- :mod:`attest.private.hpke`: HPKE base mode (RFC 9180) for the suites we use, on pyhpke.
- :mod:`attest.private.ohttp`: Oblivious HTTP request and response encapsulation (RFC 9458)
  with single-use client and server contexts.
- Wire formats (pure parsers) are attest/formats/bhttp.py (RFC 9292) and
  attest/formats/ohttp.py (RFC 9458 key configurations and encapsulations).
- :mod:`attest.private.blind_rsa`: RSA blind signatures (RFC 9474) and
  :mod:`attest.private.privacy_pass`: Privacy Pass token type 2 roles (RFC 9578; wire formats
  in attest/formats/privacy_pass.py and privacy_pass_http.py).

No I/O and no clock here; randomness is always a parameter (``rng(n) -> n bytes``).
"""
