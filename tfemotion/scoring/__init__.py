"""Bulk scoring of corpora with an export on Apache Beam (``tfemotion score``).

- ``sources``: input files (text lines, JSONL, CSV, Parquet) cut into pieces, read into records
  with their file and line, and the records that cannot be scored (dead letters);
- ``model``: the export on Beam's workers (``ExportModelHandler``, a Beam ``ModelHandler``);
- ``outputs``: the rows written (JSONL, CSV, Parquet) for scores and dead letters;
- ``pipeline``: ``ScoreTexts`` (a ``PTransform`` for your own pipelines) and ``score`` (the
  whole job: read, score, write, count).

Needs the ``beam`` extra: ``pip install "tfemotion[beam]"``.
"""

from tfemotion.scoring.pipeline import ScoreReport, ScoreTexts, score

__all__ = ["ScoreReport", "ScoreTexts", "score"]
