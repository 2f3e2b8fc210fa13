"""Bounds on every user input, in one place. Pages show each bound and a notice when it is applied.

The numbers keep the worst case of one request small on a 2-core classroom server (goal: peak
server RSS over the bad-input catalogue at most 2 GB above idle, no request running for minutes).
Other modules import their bound from here; older per-module names remain as aliases.
"""

from __future__ import annotations

# Playground / generation
MAX_PROMPT_WORDS = 1000  # the prompt box; longer prompts are cut with a notice
MAX_SYSTEM_PROMPT_WORDS = 200  # the system prompt (Question answering etc.); cut with a notice

# Fill-mask
MAX_FILL_WORDS = 300  # the text with [MASK]; cut with a notice
MAX_CANDIDATES = 20  # candidate words scored at once
MAX_CANDIDATE_CHARS = 40  # one candidate (a word or short phrase); longer ones are refused

# Explain: every attribution costs (tokens x model size); inputs are cut to a token budget
MAX_EXPLAIN_TOKENS = 64  # for tiny and small models
EXPLAIN_PARAM_BUDGET = 64 * 25_000_000  # tokens x parameters; smollm2 (135M) gets 16 tokens
MIN_EXPLAIN_TOKENS = 16

# Bias: WEAT/SEAT word lists (issue #14 may raise this with batched scoring; keep it the one knob)
MAX_WEAT_WORDS = 2000  # per target/attribute set (SEAT sentence sets hold up to ~350), scored in batches
# Uploads: one number for Streamlit's refusal (.streamlit/config.toml server.maxUploadSize, in Streamlit's
# megabytes of 1024 x 1024 bytes) and every message that states it ("up to 50 MB")
MAX_UPLOAD_MB = 50
# Minimal-pair CSV (page upload or an allowed path); the CLI streams larger files
MAX_CSV_BYTES = MAX_UPLOAD_MB * 1024 * 1024

# Path boxes (sidebar folder / GGUF file / hub id, Bias -> File path): longer input is refused, not echoed
MAX_PATH_CHARS = 1024
MAX_CSV_ROWS = 500  # pairs scored in the page

# Training lab: the corpus is generated from a grammar; its size is the number of stories
MAX_TRAIN_STORIES = 5000


def megabytes(n_bytes: int) -> float:
    """``n_bytes`` in the megabytes of :data:`MAX_UPLOAD_MB` (1024 x 1024 bytes), for messages."""
    return n_bytes / (1024 * 1024)


def explain_token_limit(n_params: int) -> int:
    """Tokens an explanation input is cut to for a model with ``n_params`` parameters."""
    if n_params <= 0:
        return MAX_EXPLAIN_TOKENS
    return max(MIN_EXPLAIN_TOKENS, min(MAX_EXPLAIN_TOKENS, EXPLAIN_PARAM_BUDGET // n_params))
