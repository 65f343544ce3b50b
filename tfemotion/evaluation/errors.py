"""Error analysis, as the book does it: the texts a model gets most and least wrong.

Example:
    >>> import pandas as pd
    >>> markdown_table(pd.DataFrame({"text": ["a|b"], "loss": [0.5]})).splitlines()
    ['| text | loss |', '| --- | ---: |', '| a\\\\|b | 0.5000 |']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def error_tables(
    dataset: Any,
    losses: np.ndarray,
    predictions: np.ndarray,
    label_names: Sequence[str],
    n: int = 10,
) -> tuple[Any, Any]:
    """The ``n`` highest- and lowest-loss examples with label names, as in the book.

    Args:
        dataset: datasets.Dataset with ``text`` and ``label``.
        losses: array of float. Per-example loss (same order as ``dataset``).
        predictions: array of int. Predicted label ids.
        label_names: sequence of str. Name of each id.
        n: int. Rows in each table.

    Returns:
        ``(highest, lowest)``: pandas DataFrames with columns ``text``, ``label``,
        ``predicted_label``, ``loss``, sorted by loss (descending, then ascending).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        >>> high, low = error_tables(ds, np.array([0.1, 2.0]), np.array([0, 0]), ["x", "y"], n=1)
        >>> high.to_dict("records")
        [{'text': 'b', 'label': 'y', 'predicted_label': 'x', 'loss': 2.0}]
    """
    import pandas as pd

    if n <= 0:
        raise ValueError(f"n must be a positive number of rows. Received: n={n!r}")
    names = np.asarray(list(label_names), dtype=object)
    frame = pd.DataFrame({
        "text": dataset["text"],
        "label": names[np.asarray(dataset["label"])],
        "predicted_label": names[np.asarray(predictions)],
        "loss": np.asarray(losses, dtype=np.float64),
    })
    ordered = frame.sort_values("loss", ascending=False, kind="stable")
    highest = ordered.head(n).reset_index(drop=True)
    lowest = frame.sort_values("loss", ascending=True, kind="stable").head(n).reset_index(drop=True)
    return highest, lowest


def multi_label_error_tables(dataset: Any, losses: np.ndarray, predicted: np.ndarray,
                             label_names: Sequence[str], n: int = 10) -> tuple[Any, Any]:
    """The ``n`` highest- and lowest-loss texts, gold and predicted labels joined by ", ".

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": ["a", "b"], "label": [[1.0, 0.0], [1.0, 1.0]]})
        >>> high, _ = multi_label_error_tables(ds, np.array([0.1, 2.0]),
        ...                                    np.array([[1, 0], [0, 1]]), ["x", "y"], n=1)
        >>> high.to_dict("records")
        [{'text': 'b', 'labels': 'x, y', 'predicted_labels': 'y', 'loss': 2.0}]
    """
    import pandas as pd

    if n <= 0:
        raise ValueError(f"n must be a positive number of rows. Received: n={n!r}")

    def joined(matrix: np.ndarray) -> list[str]:
        return [", ".join(name for name, on in zip(label_names, row) if on) for row in matrix]

    frame = pd.DataFrame({"text": dataset["text"],
                          "labels": joined(np.asarray(dataset["label"]) > 0.5),
                          "predicted_labels": joined(np.asarray(predicted).astype(bool)),
                          "loss": np.asarray(losses, dtype=np.float64)})
    highest = frame.sort_values("loss", ascending=False, kind="stable").head(n)
    lowest = frame.sort_values("loss", ascending=True, kind="stable").head(n)
    return highest.reset_index(drop=True), lowest.reset_index(drop=True)


def write_table(frame: Any, path: str | Path) -> dict[str, Path]:
    """Write a DataFrame as CSV and as a Markdown table beside it (same stem, ``.md``).

    Example:
        >>> import pandas as pd, tempfile, os
        >>> files = write_table(pd.DataFrame({"a": [1]}), os.path.join(tempfile.mkdtemp(), "t.csv"))
        >>> files["md"].read_text().splitlines()[0]
        '| a |'
    """
    path = Path(path).with_suffix(".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    markdown = path.with_suffix(".md")
    markdown.write_text(markdown_table(frame), encoding="utf-8")
    return {"csv": path, "md": markdown}


def markdown_table(frame: Any) -> str:
    """A DataFrame as a GitHub Markdown table (floats with 4 decimals, ``|`` escaped).

    Example:
        >>> import pandas as pd
        >>> markdown_table(pd.DataFrame({"text": ["a|b"], "loss": [0.5]})).splitlines()
        ['| text | loss |', '| --- | ---: |', '| a\\\\|b | 0.5000 |']
    """

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    from pandas.api.types import is_numeric_dtype

    numeric = [is_numeric_dtype(dtype) for dtype in frame.dtypes]
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
