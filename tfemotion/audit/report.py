"""The audit's report: the flagged texts as a table, where they fall, what it cost, what next.

Written into the audit folder (``OUT/audit``):

- ``label_issues.csv``: the flagged texts only, most suspect first: ``rank``, ``text``,
  ``label``, ``suggested_label``, their out-of-fold probabilities (``label_probability``,
  ``suggested_probability``), ``quality`` (cleanlab's label quality score, lower is more
  suspect) and ``source`` (the file and line, or the row, the text came from). Multi-label
  rows join label names with ``,`` and give each label's probability as ``name=p``;
- ``label_issues.md``: the summary (count per label, cost, what to do) and the same table;
- ``label_issues.png``: a heat map of the flagged texts, given label x suggested label (multi-
  label: per label, how many flagged texts the model would give it or take it from);
- ``summary.json``: the counts and the cost, for scripts.

Example:
    >>> task = Task(("sad", "happy"))
    >>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]] * 3)
    >>> texts, labels = ["so sad", "so happy"] * 3, [0, 1, 0, 1, 0, 0]  # the last one is wrong
    >>> issues = rank_label_issues(probabilities, labels, task)
    >>> frame = issue_table(texts, [f"train.txt:{i}" for i in range(1, 7)], probabilities,
    ...                     issues, task)
    >>> frame[["rank", "text", "label", "suggested_label", "source"]].values.tolist()
    [[1, 'so happy', 'sad', 'happy', 'train.txt:6']]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfemotion.audit.ranking import LabelIssues, rank_label_issues  # noqa: F401 (doctest)
from tfemotion.files import new_figure, rotate_x_labels, save_figure, write_json
from tfemotion.task import Task

TABLE = "label_issues.csv"
PLOT = "label_issues.png"
SUMMARY = "summary.json"
COLUMNS = ("rank", "text", "label", "suggested_label", "label_probability",
           "suggested_probability", "quality", "source")
# Above this share of flagged texts, the flags say more about the folds' models than the labels.
WEAK_MODEL_SHARE = 0.2
NEXT_STEPS = (
    "What to do with it: review the texts from the top of the list (rank 1 is the most "
    "suspect; the top is where most true errors are, further down more of the flags are "
    "ambiguous texts rather than wrong labels); relabel those you find wrong in their source "
    "file (the source column names the file and line); then train again, and run the audit "
    "again if many labels changed.")


def issue_table(texts: Sequence[str], sources: Sequence[str], probabilities: np.ndarray,
                issues: LabelIssues, task: Task) -> Any:
    """The flagged texts as a DataFrame with ``COLUMNS``, rank 1 first.

    Args:
        texts: the training split's texts (all of them; ``issues.rows`` index them).
        sources: the file and line (or row) of each text (``tfemotion.data.split_sources``).
        probabilities: the out-of-fold probabilities of every text.
        issues: the flagged texts (``rank_label_issues``).
        task: Task of the data.
    """
    import pandas as pd

    names = task.label_names
    rows = []
    for rank, (row, quality, given, suggested) in enumerate(
            zip(issues.rows, issues.quality, issues.given, issues.suggested), start=1):
        p = probabilities[row]
        if task.multi_label:
            label_p: Any = ", ".join(f"{names[i]}={p[i]:.4f}" for i in given)
            suggested_p: Any = ", ".join(f"{names[i]}={p[i]:.4f}" for i in suggested)
        else:
            label_p, suggested_p = float(p[given[0]]), float(p[suggested[0]])
        rows.append({"rank": rank, "text": texts[row], "label": _names(given, names),
                     "suggested_label": _names(suggested, names), "label_probability": label_p,
                     "suggested_probability": suggested_p, "quality": float(quality),
                     "source": sources[row]})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def counts_per_label(issues: LabelIssues, labels: Sequence[Any], task: Task) -> dict[str, dict]:
    """For each label: its training texts, how many of them are flagged, and that share.

    Multi-label data counts a text under each label the model would add or take away.

    Example:
        >>> issues = rank_label_issues(np.array([[0.9, 0.1], [0.2, 0.8]] * 3),
        ...                            [0, 1, 0, 1, 0, 0], Task(("a", "b")))
        >>> counts_per_label(issues, [0, 1, 0, 1, 0, 0], Task(("a", "b")))["a"]
        {'texts': 4, 'flagged': 1, 'share': 0.25}
    """
    names = task.label_names
    totals = np.zeros(len(names), dtype=np.int64)
    for label in labels:
        totals[list(label) if task.multi_label else [int(label)]] += 1
    flagged = np.zeros(len(names), dtype=np.int64)
    for given, suggested in zip(issues.given, issues.suggested):
        changed = set(given) ^ set(suggested) if task.multi_label else set(given)
        flagged[sorted(changed)] += 1
    return {name: {"texts": int(totals[i]), "flagged": int(flagged[i]),
                   "share": round(float(flagged[i] / totals[i]), 4) if totals[i] else 0.0}
            for i, name in enumerate(names)}


def plot_issues(issues: LabelIssues, task: Task, path: str | Path) -> Path:
    """Where the issues fall: given label x suggested label (multi-label: label x added /
    taken away), as a heat map of counts.

    Example:
        >>> import os, tempfile
        >>> issues = rank_label_issues(np.array([[0.9, 0.1], [0.2, 0.8]] * 3),
        ...                            [0, 1, 0, 1, 0, 0], Task(("a", "b")))
        >>> plot_issues(issues, Task(("a", "b")), os.path.join(tempfile.mkdtemp(), "i.png")).name
        'i.png'
    """
    names = list(task.label_names)
    if task.multi_label:
        matrix = np.zeros((len(names), 2), dtype=np.int64)
        for given, suggested in zip(issues.given, issues.suggested):
            for i in set(suggested) - set(given):
                matrix[i, 0] += 1
            for i in set(given) - set(suggested):
                matrix[i, 1] += 1
        columns, x_title, y_title = ["would add", "would take away"], "suggestion", "label"
    else:
        matrix = np.zeros((len(names), len(names)), dtype=np.int64)
        for given, suggested in zip(issues.given, issues.suggested):
            matrix[given[0], suggested[0]] += 1
        columns, x_title, y_title = names, "suggested label", "given label"
    size = max(5.0, 0.8 * len(names) + 2)
    fig, ax = new_figure(size if not task.multi_label else 5.0, size)
    ax.imshow(matrix, cmap="Reds")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    ax.set_title(f"{len(issues.rows)} likely label errors")
    rotate_x_labels(ax)
    return save_figure(fig, path)


def write_report(audit_dir: str | Path, texts: Sequence[str], labels: Sequence[Any],
                 sources: Sequence[str], probabilities: np.ndarray, issues: LabelIssues,
                 task: Task, cost: dict[str, Any], method: str) -> dict[str, Any]:
    """Write the table (CSV, Markdown), the heat map and the summary; return the summary.

    Args:
        audit_dir: the audit folder.
        texts, labels, sources: the training split's texts, label ids and sources.
        probabilities: out-of-fold probabilities of every text.
        issues: the flagged texts.
        task: Task of the data.
        cost: ``{"trainings", "seconds", ...}``: what the out-of-fold probabilities cost.
        method: one line: how the texts were flagged.

    Returns:
        ``{"texts", "flagged", "per_label", "cost", "method", "files"}`` (also ``summary.json``).
    """
    from tfemotion.evaluation.errors import markdown_table

    folder = Path(audit_dir)
    folder.mkdir(parents=True, exist_ok=True)
    frame = issue_table(texts, sources, probabilities, issues, task)
    frame.to_csv(folder / TABLE, index=False)
    per_label = counts_per_label(issues, labels, task)
    files = {"csv": str(folder / TABLE), "md": str(folder / TABLE.replace(".csv", ".md")),
             "plot": str(plot_issues(issues, task, folder / PLOT))}
    summary = {"texts": len(texts), "flagged": len(issues.rows), "per_label": per_label,
               "out_of_fold_accuracy": out_of_fold_accuracy(probabilities, labels, task),
               "cost": cost, "method": method, "files": files}
    summary["warning"] = weak_model_warning(summary)
    markdown = _summary_markdown(summary) + "\n" + markdown_table(frame)
    Path(files["md"]).write_text(markdown, encoding="utf-8")
    write_json(summary, folder / SUMMARY)
    return summary


def out_of_fold_accuracy(probabilities: np.ndarray, labels: Sequence[Any], task: Task) -> float:
    """How often the out-of-fold prediction is the given label (multi-label: the given set, at
    0.5): a ceiling on what the audit can tell, since its models err too.

    Example:
        >>> out_of_fold_accuracy(np.array([[0.9, 0.1], [0.3, 0.7]]), [0, 0], Task(("a", "b")))
        0.5
    """
    if task.multi_label:
        given = task.multi_hot(labels)
        return round(float(((probabilities >= 0.5) == (given > 0)).all(axis=1).mean()), 4)
    return round(float((probabilities.argmax(axis=1) == np.asarray(labels)).mean()), 4)


def weak_model_warning(summary: dict[str, Any]) -> str | None:
    """A warning when so many texts are flagged that the folds' models, not the labels, are
    the likelier cause; else None.

    Example:
        >>> weak_model_warning({"texts": 100, "flagged": 40, "out_of_fold_accuracy": 0.55})[:40]
        'warning: 40% of the texts flagged, and t'
    """
    share = summary["flagged"] / summary["texts"] if summary["texts"] else 0.0
    if share <= WEAK_MODEL_SHARE:
        return None
    return (f"warning: {share:.0%} of the texts flagged, and the folds' models agree with the "
            f"given labels on only {summary['out_of_fold_accuracy']:.0%} of them: the models "
            "are too weak for the flags to mean wrong labels. Train the folds longer (--epochs) "
            "or on more data before acting on this list.")


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary in a few lines (``tfemotion audit`` prints them).

    Example:
        >>> summary_lines({"texts": 10, "flagged": 1, "method": "m", "per_label": {
        ...     "a": {"texts": 5, "flagged": 1, "share": 0.2}}, "cost": {"trainings": 2,
        ...     "trained_now": 2, "seconds": 3.0, "recipe": "r"}})[0]
        '1 of the 10 training texts flagged as likely label errors (10.0%)'
    """
    share = summary["flagged"] / summary["texts"] if summary["texts"] else 0.0
    cost = summary["cost"]
    lines = [f"{summary['flagged']} of the {summary['texts']} training texts flagged as likely "
             f"label errors ({share:.1%})",
             "per label (flagged / texts): " + ", ".join(
                 f"{name} {c['flagged']}/{c['texts']}" for name, c in summary["per_label"].items()),
             f"cost: {cost['trainings']} trainings ({cost['trained_now']} in this session), "
             f"{cost['seconds']:.0f} s in all; {cost['recipe']}",
             f"method: {summary['method']}"]
    if "out_of_fold_accuracy" in summary:
        lines.insert(1, f"out-of-fold predictions agree with the given labels on "
                        f"{summary['out_of_fold_accuracy']:.1%} of the texts")
    if summary.get("warning"):
        lines.append(summary["warning"])
    return lines


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Label audit", ""] + [f"- {line}" for line in summary_lines(summary)]
    lines += ["", NEXT_STEPS, "", "| label | texts | flagged | share |",
              "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {c['texts']} | {c['flagged']} | {c['share']:.1%} |"
              for name, c in summary["per_label"].items()]
    lines += ["", f"Where they fall: `{PLOT}`. The flagged texts, most suspect first:", ""]
    return "\n".join(lines)


def _names(ids: Sequence[int], names: Sequence[str]) -> str:
    return ",".join(names[i] for i in ids)
