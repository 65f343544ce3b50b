"""Fine-tuning, the book's second approach: the whole model trained with Keras ``compile``/``fit``.

- ``classifier``: the checkpoint's encoder with a new head for the task, compiled;
- ``inputs``: the ``tf.data`` pipeline of the training texts, bucketed by length;
- ``callbacks``: validation figures every epoch, checkpoints, the NaN stop, TensorBoard;
- ``calibrate``: the temperatures fitted on held-out logits after training (a multi-label run's
  decision thresholds tuned on the calibrated probabilities), ``calibrate_run`` for a saved run;
- ``results``: the best epoch, the saved run folder and its evaluation;
- ``finetune``: ``train``, the steps above in one call, with ``--resume`` and distribution;
  it chooses the recipe, and holds out a validation share (``holdout``) when the data has none;
- the contrastive recipe for few labelled texts (SetFit's): ``pairs`` (which pairs of texts a
  step trains on), ``templates`` (texts made from the label names), ``pair_tuning`` (phase 1:
  the encoder tuned on pairs, checkpointed, resumed), ``heads`` (phase 2: the head fitted on
  the tuned vectors), ``contrastive`` (both phases and the run folder).
"""

from tfemotion.training.calibrate import calibrate_run
from tfemotion.training.callbacks import ValidationMetrics
from tfemotion.training.classifier import (build_classifier, compile_classifier, hidden_size,
                                           start_at_label_frequencies)
from tfemotion.training.finetune import NaNLossError, train
from tfemotion.training.inputs import train_dataset
from tfemotion.training.results import best_epoch, history_table, save_run, training_advice

__all__ = ["NaNLossError", "ValidationMetrics", "best_epoch", "build_classifier", "calibrate_run",
           "compile_classifier", "hidden_size", "history_table", "save_run",
           "start_at_label_frequencies", "train", "train_dataset", "training_advice"]
