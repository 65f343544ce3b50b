"""Phase 1 of the contrastive recipe: the sentence encoder tuned on pairs of texts.

``tune_encoder`` runs the steps of a ``PairPlan`` (``tfemotion.training.pairs``) through
``PairTuner``, whose step is traced once without AutoGraph, in the loop Keras ``fit`` runs (the
callbacks see the same calls), checkpointing every ``checkpoint_steps`` steps
(``Phase1Keeper``) and resuming from the last checkpoint.

Example:
    >>> phase1_step(RunFolder("no/such/run"))
    0
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional, Sequence

import numpy as np
import tf_keras

from tfemotion.config import FinetuneConfig, Schedule
from tfemotion.files import write_json
from tfemotion.runfolder import RunFolder, write_history
from tfemotion.task import Task
from tfemotion.training.callbacks import (NaNGuard, NaNLossError, epoch_checkpoint,
                                          restore_checkpoint)
from tfemotion.training.pairs import PairPlan

logger = logging.getLogger(__name__)

RECIPE = "contrastive"


class PairTuner(tf_keras.Model):
    """Trains a sentence classifier's encoder on pairs (its head stays frozen).

    ``train_step`` takes a batch of distinct texts and each pair as two positions among them;
    the loss is the weighted squared error between each pair's cosine and its target. It is one
    ``tf.function`` traced once, without AutoGraph (the encoder's Python is not rewritten,
    which takes longer than the whole of phase 1 on small data).
    """

    def __init__(self, classifier: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classifier = classifier
        self._step: Any = None

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.classifier.embed(inputs["input_ids"], inputs["attention_mask"],
                                     training=training)

    def pair_loss(self, input_ids: Any, attention_mask: Any, left: Any, right: Any,
                  targets: Any, weights: Any, training: bool = True) -> Any:
        """Squared error between the pairs' cosines and their targets, weighted (the weights
        sum to 1: SetFit's sampling weighs every pair alike, in-batch sampling balances the
        positives against the negatives)."""
        import tensorflow as tf

        vectors = tf.math.l2_normalize(self.classifier.embed(input_ids, attention_mask,
                                                             training=training), axis=-1)
        cosine = tf.reduce_sum(tf.gather(vectors, left) * tf.gather(vectors, right), axis=-1)
        return tf.reduce_sum(weights * tf.square(cosine - targets))

    def train_step(self, data: Any) -> Any:
        """One optimizer step on a batch ``({"input_ids", "attention_mask", "left", "right"},
        targets)``; returns the batch's loss."""
        import tensorflow as tf

        if self._step is None:
            build_optimizer(self.optimizer, self.trainable_variables)
            matrix, vector = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)

            def step(input_ids, attention_mask, left, right, targets, weights):
                with tf.GradientTape() as tape:
                    loss = self.pair_loss(input_ids, attention_mask, left, right, targets,
                                          weights)
                variables = self.trainable_variables
                # Variables the pooled vector does not depend on (a BERT pooler under mean
                # pooling) get no gradient: leave them out rather than warn at every trace.
                self.optimizer.apply_gradients(
                    [(gradient, variable) for gradient, variable
                     in zip(tape.gradient(loss, variables), variables) if gradient is not None])
                return loss

            real = tf.TensorSpec([None], tf.float32)
            self._step = tf.function(step, autograph=False, jit_compile=self._jit_compile,
                                     input_signature=[matrix, matrix, vector, vector, real,
                                                      real])
        features, targets = data
        return self._step(features["input_ids"], features["attention_mask"], features["left"],
                          features["right"], targets, features["weights"])


def build_optimizer(optimizer: Any, variables: Sequence[Any]) -> None:
    """Create the optimizer's slots for ``variables`` before any step is traced (a step that
    creates variables is traced twice)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if hasattr(inner, "_create_all_weights"):  # legacy optimizers (transformers' AdamWeightDecay)
        inner._create_all_weights(variables)
    else:
        inner.build(variables)


class Phase1Keeper(tf_keras.callbacks.Callback):
    """Checkpoints phase 1 every ``every`` steps and at each epoch's end, with its state.

    ``RUN/checkpoints/state.json`` says which checkpoint is the last complete one (it is
    written after the checkpoint), so a run killed while writing resumes from the one before.
    """

    def __init__(self, run: RunFolder, every: int, pairs_per_epoch: int,
                 rows: list[dict[str, Any]], task: Task) -> None:
        super().__init__()
        self.run, self.every, self.pairs_per_epoch, self.rows = run, every, pairs_per_epoch, rows
        self.task = task
        self.saved = phase1_step(run)
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            self.save(step)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        loss = float((logs or {}).get("loss", float("nan")))
        if not np.isfinite(loss):
            return
        self.rows.append({"epoch": epoch + 1, "loss": loss,
                          "train_seconds": time.perf_counter() - self._start,
                          "train_examples": self.pairs_per_epoch})
        self.save(int(self.model.optimizer.iterations.numpy()))

    def save(self, step: int) -> None:
        """Write the checkpoint after ``step`` steps (unless written), then the state naming it."""
        if step != self.saved:
            epoch_checkpoint(self.model).write(str(self.run.phase1_checkpoint(step)))
        write_history(self.run, self.rows, self.task)
        write_json({"rows": self.rows, "completed_epochs": len(self.rows), "recipe": RECIPE,
                    "phase1_step": step}, self.run.state)
        if self.saved and self.saved != step:
            old = self.run.phase1_checkpoint(self.saved)
            for file in old.parent.glob(f"{old.name}.*"):
                file.unlink(missing_ok=True)
        self.saved = step


def phase1_step(run: RunFolder) -> int:
    """The steps of phase 1 the run's last complete checkpoint holds (0: none).

    Example:
        >>> phase1_step(RunFolder("no/such/run"))
        0
    """
    import json

    if not run.state.is_file():
        return 0
    return int(json.loads(run.state.read_text(encoding="utf-8")).get("phase1_step", 0))


def tune_encoder(model: Any, encoded: Any, plan: PairPlan, schedule: Schedule,
                  config: FinetuneConfig, run: RunFolder, task: Task, pad_id: int,
                  rows: list[dict[str, Any]], callbacks: Optional[Sequence[Any]],
                  verbose: Any) -> list[dict[str, Any]]:
    """Phase 1, from the last checkpoint on; the completed epochs' rows.

    The loop is Keras ``fit``'s (the callbacks see the same calls, with the running ``loss`` in
    the logs), without its AutoGraph-converted train function.
    """
    from transformers import create_optimizer

    steps = plan.steps_per_epoch
    total = steps * schedule.epochs
    optimizer, _ = create_optimizer(init_lr=schedule.learning_rate, num_train_steps=total,
                                    num_warmup_steps=int(schedule.warmup_ratio * total),
                                    weight_decay_rate=config.weight_decay)
    model.head.trainable = False
    tuner = PairTuner(model)
    tuner.compile(optimizer=optimizer, jit_compile=config.xla)
    done = phase1_step(run)
    if done:
        restore_checkpoint(epoch_checkpoint(tuner), tuner, run.phase1_checkpoint(done))
        logger.info("Resuming phase 1 of %s after step %d of %d", run.root, done, total)
    guard = NaNGuard()
    keeper = Phase1Keeper(run, config.checkpoint_steps, plan.pairs_per_epoch, rows, task)
    listeners = tf_keras.callbacks.CallbackList(
        [guard, keeper, *(callbacks or [])], add_history=True, add_progbar=verbose != 0,
        model=tuner, verbose=1 if verbose == "auto" else verbose, epochs=schedule.epochs,
        steps=steps)
    ids = list(encoded["input_ids"])
    listeners.on_train_begin()
    for epoch in range(done // steps, schedule.epochs):
        first = done - epoch * steps if epoch == done // steps else 0
        listeners.on_epoch_begin(epoch)
        losses: list[float] = []
        for index, batch in enumerate(_tensors(ids, plan.batches(epoch, first), pad_id),
                                      start=first):
            listeners.on_train_batch_begin(index)
            losses.append(float(tuner.train_step(batch)))
            listeners.on_train_batch_end(index, {"loss": float(np.mean(losses))})
            if tuner.stop_training:
                break
        if guard.tripped:
            raise NaNLossError(
                f"the contrastive loss became NaN at epoch {guard.tripped[0]}, step "
                f"{guard.tripped[1]}, and training stopped; the checkpoint after step "
                f"{keeper.saved} is kept (--resume continues from it, a lower --learning-rate "
                f"is allowed). Received: learning_rate={schedule.learning_rate}")
        listeners.on_epoch_end(epoch, {"loss": float(np.mean(losses)) if losses else 0.0})
        if tuner.stop_training:
            break
    listeners.on_train_end()
    model.head.trainable = True
    return rows


def _tensors(ids: list[list[int]], batches: Any, pad_id: int) -> Any:
    """Phase 1's batches as tensors: the texts padded to the batch's longest."""
    import tensorflow as tf

    for batch in batches:
        padded, mask = pad_batch([ids[i] for i in batch.texts], pad_id)
        yield ({"input_ids": tf.constant(padded), "attention_mask": tf.constant(mask),
                "left": tf.constant(batch.left), "right": tf.constant(batch.right),
                "weights": tf.constant(batch.weights)}, tf.constant(batch.targets))


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest row, and the attention mask."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for index, row in enumerate(rows):
        ids[index, :len(row)] = row
        mask[index, :len(row)] = 1
    return ids, mask
