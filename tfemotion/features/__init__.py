"""Feature extraction, the book's first approach: encoder hidden states, then a linear classifier.

- ``extraction``: pooled last hidden states of any encoder, batched by length, cached on disk;
- ``baseline``: logistic regression on them against a most-frequent dummy (``run_baseline``).
"""

from tfemotion.features.baseline import run_baseline
from tfemotion.features.extraction import extract_features

__all__ = ["extract_features", "run_baseline"]
