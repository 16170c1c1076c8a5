"""A reduced sample bag, built once per test session into a temporary folder."""

from pathlib import Path

import pytest

from kestrel_tools.sample import SampleConfig, build_sample_bag


@pytest.fixture(scope="session")
def sample_bag(tmp_path_factory) -> Path:
    """The reduced sample bag (MCAP)."""
    return build_sample_bag(tmp_path_factory.mktemp("sample") / "bag", "mcap",
                            SampleConfig.reduced()).path
