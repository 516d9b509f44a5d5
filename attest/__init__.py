"""attest: the node side. Evidence formats, collection, bundles, releases and the agent."""
