"""The log as an HTTP service (`tlog serve`): the C2SP tlog-tiles read path, the
authenticated write path, the explorer page it serves, and its rate-limited failure log."""
