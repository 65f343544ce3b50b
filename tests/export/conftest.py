"""The model folder the export tests export: the session run's (export_model only reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def classifier_dir(trained_run) -> Path:
    """The session run's saved model folder."""
    return trained_run[0] / "model"
