"""The report: flagged texts only, with their columns, file and line; counts per label; the
summary with its cost and next steps; the heat map; multi-label rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tfemotion.audit.ranking import rank_label_issues
from tfemotion.audit.report import COLUMNS, write_report
from tfemotion.task import Task

COST = {"trainings": 2, "trained_now": 1, "seconds": 12.5, "fold_seconds": [6.0, 6.5],
        "recipe": "recipe 'default' as given"}


def _single_label_case():
    task = Task(("sad", "happy", "angry"))
    truth = np.array([0, 1, 2] * 20)
    probabilities = np.full((60, 3), 0.05)
    probabilities[np.arange(60), truth] = 0.9
    given = truth.copy()
    given[[4, 32]] = [0, 1]  # a happy text labelled sad, an angry one labelled happy
    texts = [f"text {i}" for i in range(60)]
    sources = [f"data/train.txt:{i + 1}" for i in range(60)]
    return task, texts, given.tolist(), sources, probabilities


def test_the_table_holds_the_flagged_texts_with_their_file_line_and_probabilities(tmp_path):
    task, texts, given, sources, probabilities = _single_label_case()
    issues = rank_label_issues(probabilities, given, task)
    summary = write_report(tmp_path, texts, given, sources, probabilities, issues, task, COST,
                           "a method")
    table = pd.read_csv(tmp_path / "label_issues.csv")
    assert table.columns.tolist() == list(COLUMNS)
    assert sorted(table["source"]) == ["data/train.txt:33", "data/train.txt:5"]
    row = table.set_index("source").loc["data/train.txt:5"]
    assert (row["text"], row["label"], row["suggested_label"]) == ("text 4", "sad", "happy")
    assert (row["label_probability"], row["suggested_probability"]) == (0.05, 0.9)
    assert table["rank"].tolist() == [1, 2]
    assert summary["flagged"] == 2 and summary["texts"] == 60 and summary["warning"] is None
    assert summary["out_of_fold_accuracy"] == round(58 / 60, 4)
    assert summary["per_label"]["sad"] == {"texts": 21, "flagged": 1, "share": round(1 / 21, 4)}
    assert summary["per_label"]["angry"]["flagged"] == 0
    assert json.loads((tmp_path / "summary.json").read_text())["cost"] == COST
    assert (tmp_path / "label_issues.png").stat().st_size > 0


def test_the_markdown_says_what_it_found_what_it_cost_and_what_to_do(tmp_path):
    task, texts, given, sources, probabilities = _single_label_case()
    issues = rank_label_issues(probabilities, given, task)
    write_report(tmp_path, texts, given, sources, probabilities, issues, task, COST, "a method")
    markdown = (tmp_path / "label_issues.md").read_text()
    assert "2 of the 60 training texts flagged" in markdown
    assert "cost: 2 trainings (1 in this session), 12 s in all" in markdown
    assert "review the texts from the top" in markdown and "train again" in markdown
    assert "| sad | 21 | 1 | 4.8% |" in markdown
    assert "| 1 | text " in markdown and "data/train.txt:5 |" in markdown


def test_multi_label_rows_join_names_and_give_each_label_its_probability(tmp_path):
    task = Task(("a", "b", "c"), "multi_label")
    truth = [(0,), (1,), (0, 2), (1, 2)] * 15
    probabilities = np.full((60, 3), 0.05)
    for i, labels in enumerate(truth):
        probabilities[i, list(labels)] = 0.95
    given = list(truth)
    given[6] = (0,)  # c is missing
    issues = rank_label_issues(probabilities, given, task)
    summary = write_report(tmp_path, [f"t{i}" for i in range(60)], given,
                           [f"f.jsonl:{i + 1}" for i in range(60)], probabilities, issues, task,
                           COST, "m")
    table = pd.read_csv(tmp_path / "label_issues.csv")
    assert table[["label", "suggested_label", "label_probability", "suggested_probability",
                  "source"]].values.tolist() == [["a", "a,c", "a=0.9500", "a=0.9500, c=0.9500",
                                                  "f.jsonl:7"]]
    assert summary["per_label"]["c"]["flagged"] == 1 and summary["per_label"]["a"]["flagged"] == 0


def test_a_list_of_mostly_model_errors_says_so(tmp_path):
    task = Task(("sad", "happy"))
    probabilities = np.tile([[0.3, 0.7]], (40, 1))  # a model that always says happy
    labels = [0, 1] * 20
    issues = rank_label_issues(probabilities, labels, task, "predicted_neq_given")
    summary = write_report(tmp_path, ["t"] * 40, labels, ["s"] * 40, probabilities, issues,
                           task, COST, "m")
    assert summary["out_of_fold_accuracy"] == 0.5
    assert summary["warning"].startswith("warning: 50% of the texts flagged")
    assert "too weak" in (tmp_path / "label_issues.md").read_text()
