"""The core every plug-in builds on: document schema, stage and extractor contracts, file I/O on any filesystem, config helpers, accounting. Imports nothing above it."""
