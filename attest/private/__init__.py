"""Private requests (issue 13): anonymous tokens (RFC 9474, RFC 9577, RFC 9578) and OHTTP."""
