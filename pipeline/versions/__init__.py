"""Immutable corpus versions: manifest, diff, verify, report."""
