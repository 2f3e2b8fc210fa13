"""``llmviz generate``: one generation from the command line, saying which arithmetic ran and, for the fast
mode, how far it moved from float32 (``llmviz.generation.deviation``).

``generate --model smollm2 (--prompt TEXT | --preset qa) [--system TEXT] [--max-new-tokens N] [--greedy]
[--seed N] [--precision exact|int8] [--json OUT]``: the text on stdout; the mode, speed and deviation on
stderr; ``--json`` writes the transcript (``llmviz.generation.transcript``) with the deviation in it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from llmviz.errors import InputError
from llmviz.generation.deviation import with_deviation
from llmviz.generation.generate import SamplingParams, build_prompt, generate
from llmviz.generation.presets import PRESETS, presets_for
from llmviz.generation.transcript import transcript_json
from llmviz.models.loading import load_model
from llmviz.precision import EXACT, GENERATION_MODES

COMMANDS = ("generate",)


def register(sub) -> None:
    g = sub.add_parser(
        "generate",
        help="Generate text from a prompt or a Playground preset (exact float32 or fast int8 weights).",
        description="Generation with per-step probabilities; --precision int8 also reports the agreement with "
        "float32 on this answer and over the preset prompts.",
    )
    g.add_argument("--model", default="smollm2", help="registry id, folder or hub id (default smollm2)")
    g.add_argument("--prompt", default=None, help="the user prompt (or --preset)")
    g.add_argument("--preset", choices=tuple(PRESETS), default=None, help="a Playground preset: prompt and settings")
    g.add_argument("--system", default=None, help="system prompt (chat models)")
    g.add_argument("--max-new-tokens", type=int, default=None)
    g.add_argument("--greedy", action="store_true", help="greedy decoding (default: the preset's, else sampling)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument(
        "--precision",
        choices=tuple(GENERATION_MODES),
        default=EXACT,
        help="; ".join(f"{k}: {v}" for k, v in GENERATION_MODES.items()),
    )
    g.add_argument("--json", default=None, help="also write the transcript JSON here")


def dispatch(args: argparse.Namespace) -> int:
    loaded = load_model(args.model)
    if args.preset is not None:
        preset = presets_for(bool(loaded.facts.has_chat_template))[args.preset]
        user, system, params = preset.user, preset.system, preset.params
    elif args.prompt:
        user, system, params = args.prompt, "", SamplingParams()
    else:
        raise InputError("Give a prompt (--prompt TEXT) or a preset (--preset qa).")
    user = args.prompt or user
    system = system if args.system is None else args.system
    changes = {"greedy": True} if args.greedy else {}
    if args.max_new_tokens is not None:
        changes["max_new_tokens"] = args.max_new_tokens
    if args.seed is not None:
        changes["seed"] = args.seed
    params = replace(params, **changes)
    gen = generate(loaded, build_prompt(loaded, user, system), params, precision=args.precision)
    gen = with_deviation(loaded, gen)
    print(gen.text)
    for notice in gen.notices:
        print(f"note: {notice}", file=sys.stderr)
    tps = len(gen.steps) / gen.elapsed_s if gen.elapsed_s else 0.0
    print(
        f"{gen.precision}: {len(gen.steps)} tokens in {gen.elapsed_s:.2f} s ({tps:.1f} tokens/s), ended: {gen.stop_reason}",
        file=sys.stderr,
    )
    if gen.deviation is not None:
        print(deviation_line(gen.deviation), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(transcript_json([gen], loaded.facts), encoding="utf-8")
    return 0


def deviation_line(dev) -> str:
    """The measured deviation of a fast run in one line."""
    line = (
        f"{dev.precision} weights: top-1 agreement {100 * dev.fraction:.0f} % with float32 on this answer "
        f"({dev.agree}/{dev.total} steps, max |Δ log p| of the chosen tokens {dev.max_abs_dlogprob:.3f})"
    )
    if dev.presets is not None and dev.presets.total:
        p = dev.presets
        line += (
            f"; {100 * p.fraction:.1f} % over the {len(p.per_preset)} preset prompts "
            f"({p.agree}/{p.total} steps, {p.n_tokens} tokens each)"
        )
    return line
