"""Column names the mix adds to documents, shared by the mix, its gather and tokenizing (which would
import each other otherwise)."""

from __future__ import annotations

TOKENS_COLUMN = "_tokens"  # a document's tokens (uint32 bytes, EOS included) when tokenized before mixing
KEY_COLUMN, EPOCH_COLUMN = "_mix_key", "_mix_epoch"  # a copy's shuffle key and epoch, until the gather sorts
TEXT_BYTES_COLUMN = "_mix_text_bytes"  # a copy's UTF-8 text length, carried instead of its text (mix(text=False))
