"""The `tlog` command line."""
