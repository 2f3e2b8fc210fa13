"""Tokens as people read them: :func:`display_token` turns a token id into readable text.

A low module (it imports nothing from llmviz), so every package can show tokens the same way.
"""

from __future__ import annotations

import re


def _byte_level_map() -> dict[str, int]:
    """GPT-2 byte-level BPE alphabet: printable character -> the byte it stands for."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in chars:
            chars[b], extra = chr(256 + extra), extra + 1
    return {c: b for b, c in chars.items()}


_BYTE_OF = _byte_level_map()


def _partial_bytes(raw: str) -> str | None:
    """A byte-level token that is only part of a UTF-8 character (emoji, Hebrew...) as ``⟨D7⟩``."""
    if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", raw):  # SentencePiece byte fallback is already readable
        return raw
    if not raw or any(ch not in _BYTE_OF for ch in raw):
        return None
    data = bytes(_BYTE_OF[ch] for ch in raw)
    lead = "▁" if data[:1] == b" " else ""
    return lead + "⟨" + " ".join(f"{b:02X}" for b in data.lstrip(b" ")) + "⟩"


def display_token(tokenizer, token_id: int) -> str:
    """A readable string for one token: WordPiece keeps ``##``; byte-level BPE is decoded
    (``Ġthe`` -> `` the``) and a leading space is shown as ``▁`` so word starts stay visible."""
    raw = tokenizer.convert_ids_to_tokens(int(token_id))
    if raw is None:
        return f"<{token_id}>"
    if raw.startswith("##") or raw in (tokenizer.all_special_tokens or []):
        return raw
    text = tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)
    if text == "":
        return raw
    if "\ufffd" in text:
        text = _partial_bytes(raw) or text
        return text
    if text.startswith(" "):
        text = "▁" + text[1:]
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
