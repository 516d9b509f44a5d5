"""A verifying client of any C2SP tlog-tiles log and its forward-only checkpoint store."""
