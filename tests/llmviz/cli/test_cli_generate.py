"""``llmviz generate``: the text on stdout, the mode and (int8) the measured deviation on stderr, the
transcript with both."""

from __future__ import annotations

import json

from llmviz.cli import main


def test_generate_int8_prints_mode_and_agreement(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "t.json"
    base = ["generate", "--model", str(tiny_llama_dir), "--prompt", "the cat sat", "--greedy", "--max-new-tokens", "3"]
    assert main(base + ["--precision", "int8", "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "int8: 3 tokens" in err and "with float32 on this answer" in err and "over the 5 preset prompts" in err
    (branch,) = json.loads(out.read_text())["branches"]
    assert branch["precision"] == "int8" and branch["deviation_from_float32"]["total"] == 3
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "exact: 3 tokens" in err and "float32 on this answer" not in err
    assert main(["generate", "--model", str(tiny_llama_dir)]) == 2  # no prompt: a message, not a traceback
