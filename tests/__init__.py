"""attestlog's tests (run `pytest` or `make test` from the repository root)."""
