"""What a run leaves behind: its best epoch by the task's metric, the advice, the table."""

from __future__ import annotations

from tfemotion.task import MULTI_LABEL, Task
from tfemotion.training import best_epoch, history_table, training_advice

SINGLE, MULTI = Task(("a", "b")), Task(("a", "b"), MULTI_LABEL)
ROWS = [{"epoch": 1, "val_f1_weighted": 0.70, "val_f1_micro": 0.80},
        {"epoch": 2, "val_f1_weighted": 0.75, "val_f1_micro": 0.78},
        {"epoch": 3, "val_f1_weighted": 0.75, "val_f1_micro": 0.79}]


def test_the_best_epoch_is_judged_by_the_task_s_metric_earliest_on_ties():
    assert best_epoch(ROWS, SINGLE) == 2  # weighted F1; epoch 3 ties and comes later
    assert best_epoch(ROWS, MULTI) == 1  # micro F1


def test_training_advice_reads_the_task_s_metric():
    rising = [{"epoch": 1, "val_f1_weighted": 0.5, "val_f1_micro": 0.5},
              {"epoch": 2, "val_f1_weighted": 0.51, "val_f1_micro": 0.6}]
    assert training_advice(rising, SINGLE) is None
    assert "0.5000 -> 0.6000" in training_advice(rising, MULTI)
    assert training_advice(rising[:1], MULTI) is None


def test_history_table_has_a_row_per_epoch():
    rows = [{"epoch": e, "loss": 1.0 / e, "val_loss": 0.5, "val_accuracy": 0.9,
             "val_f1_weighted": 0.8} for e in (1, 2)]
    lines = history_table(rows).splitlines()
    assert len(lines) == 3 and lines[2].split()[0] == "2" and lines[2].split()[1] == "0.500000"
