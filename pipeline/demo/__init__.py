"""The embedded demo's inputs, generated in each source's real format."""
