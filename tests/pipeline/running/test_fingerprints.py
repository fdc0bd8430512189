"""Input fingerprints are cached by path and inode with size and mtime: moved, renamed or hard-linked
inputs are not read again; changed ones are."""

from __future__ import annotations

import os

from pipeline.running import fingerprints
from pipeline.running.fingerprints import FingerprintCache


def _counting(monkeypatch) -> list[str]:
    hashed: list[str] = []
    real = fingerprints.file_fingerprint

    def spy(path):
        hashed.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(fingerprints, "file_fingerprint", spy)
    return hashed


def test_a_moved_or_hard_linked_input_is_not_hashed_again(tmp_path, monkeypatch):
    hashed = _counting(monkeypatch)
    a = tmp_path / "in" / "a.warc.gz"
    a.parent.mkdir()
    a.write_bytes(b"x" * 1000)
    cache = FingerprintCache(tmp_path / "fingerprints.json")
    first = cache.of(a)
    cache.save()
    linked = tmp_path / "grown" / "a.warc.gz"
    linked.parent.mkdir()
    os.link(a, linked)
    moved = tmp_path / "moved.warc.gz"
    os.rename(a, moved)
    again = FingerprintCache(tmp_path / "fingerprints.json")  # as the next build loads it
    assert again.of(linked) == again.of(moved) == first
    assert hashed == ["a.warc.gz"]


def test_a_changed_input_is_hashed_again(tmp_path, monkeypatch):
    hashed = _counting(monkeypatch)
    a = tmp_path / "a.jsonl"
    a.write_text("one\n")
    cache = FingerprintCache(tmp_path / "fingerprints.json")
    first = cache.of(a)
    a.write_text("two, longer\n")  # same inode, other size and content
    assert cache.of(a) != first
    assert hashed == ["a.jsonl", "a.jsonl"]
