"""verifier: the client side. Authenticity, collateral, policy, pipeline and audit."""
