"""The node agent (`attest agent`): boot-time self-check and the HTTPS bundle endpoint."""
