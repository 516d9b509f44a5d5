"""C2SP tlog-witness: the witness service, and the log's side that asks a witness to cosign."""
