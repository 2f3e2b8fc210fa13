"""Fixtures the audit tests share."""

import pytest

from llmviz.bias.pairs_data import starter_pairs


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    """A CrowS-Pairs CSV of 12 pairs (every 6th of the starter set)."""
    path = tmp_path_factory.mktemp("audits") / "pairs.csv"
    starter_pairs().frame.iloc[::6].to_csv(path, index=False)
    return path
