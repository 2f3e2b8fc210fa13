"""The run store: every audit (CrowS-Pairs, StereoSet, SEAT/WEAT, template probe) recorded in a database.

See :mod:`llmviz.runs.store` (SQLite by default, any SQLAlchemy URL through ``LLMVIZ_DB_URL``) and
:mod:`llmviz.runs.record` (what each kind of audit stores per item).
"""
