"""Project-wide utilities that attest and verifier use too: the one error hierarchy,
exit statuses, CLI plumbing, HTTP fetching, state files, ASGI serving, service logging and the
parse-once caches of immutable inputs."""
