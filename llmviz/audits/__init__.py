"""Audits as library functions: typed settings in, a report object out.

- :mod:`~llmviz.audits.crows`: CrowS-Pairs over a CSV (chunked, resumable, ``--engine local|ray``);
- :mod:`~llmviz.audits.stereoset`: StereoSet scored with a model, or a prediction file re-scored;
- :mod:`~llmviz.audits.seat`: the SEAT suite per layer;
- :mod:`~llmviz.audits.matrix`: every model × benchmark, resumable, one summary table.

Each ``run_*`` function validates its settings, runs (through :mod:`llmviz.engine`), records the run in the
run store and returns a report dataclass with ``to_dict()`` (the JSON layout) and writers. Progress goes to
an optional ``progress(done, total)`` callback; nothing here prints. The command line (:mod:`llmviz.cli`)
parses, calls these and prints.
"""
