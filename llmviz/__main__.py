"""``python -m llmviz`` entry point (see llmviz/cli/)."""

from llmviz.cli import main

raise SystemExit(main())
