"""Evaluation and error analysis: how well a classifier does on labelled texts, and where it fails.

- ``metrics``: the figures of a task (single-label: accuracy, weighted and macro F1; multi-label:
  micro F1, subset accuracy, Hamming loss...) and per-class reports;
- ``thresholds``: multi-label decisions, and the per-label thresholds tuned on validation;
- ``outputs``: a model's logits, probabilities and per-example losses on a tokenized split;
- ``errors``: the highest- and lowest-loss texts, as CSV and Markdown tables;
- ``calibration``: how far the probabilities can be trusted (ECE, NLL, Brier score) and the
  temperatures that calibrate them, fitted on held-out logits;
- ``plots``: the confusion matrix, the per-label decisions and the reliability diagram;
- ``evaluate``: all of that for a split (``evaluate_split``) or a saved run (``evaluate_run``).
"""

from tfemotion.evaluation.calibration import calibration_metrics, fit_temperatures
from tfemotion.evaluation.evaluate import evaluate_run, evaluate_split
from tfemotion.evaluation.metrics import (classification_metrics, multilabel_metrics,
                                          task_metrics)
from tfemotion.evaluation.plots import plot_confusion_matrix

__all__ = ["calibration_metrics", "classification_metrics", "evaluate_run", "evaluate_split", "fit_temperatures",
           "multilabel_metrics", "plot_confusion_matrix", "task_metrics"]
