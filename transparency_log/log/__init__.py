"""The log itself: its lifecycle (append, integrate, sign) on a storage backend, and
publishing its tiles as static files."""
