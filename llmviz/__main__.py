"""``python -m llmviz`` entry point (see llmviz/cli.py)."""

from llmviz.cli import main

raise SystemExit(main())
