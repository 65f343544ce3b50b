"""The graph of an export: the model's variables, the in-graph tokenizer, the signature functions.

``serving_module`` builds the ``tf.Module`` that ``tf.saved_model.save`` writes, with one traced
model (``encoded``) that every other signature calls: the raw-text ones tokenize in the graph
and run the model on groups of similar-length texts (``run_in_length_groups``), so a batch of
short tweets does not pay for its longest one. The signature names and keys are those of
``tfemotion.export.signatures``.

Example:
    >>> module, signatures = serving_module(model, None, task)  # no tokenizer: ids in only
    >>> sorted(signatures)
    ['encoded', 'encoded_int64']
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from tfemotion.export.signatures import (ATTENTION_MASK, CLASSES, CLASSIFY, ENCODED,
                                         ENCODED_INT64, EXAMPLES, INPUT_IDS, LABEL, LABEL_ID,
                                         LABELS, LOGITS, PREDICT, PREDICTED, PROBABILITIES,
                                         SCORES, TEXT, TOKENIZE)
from tfemotion.task import Task

# Raw-text signatures run the model on groups of this many texts of similar length, so a
# batch of short tweets does not pay for its longest one (2-3x less work on the emotion data).
LENGTH_GROUP_SIZE = 12


def serving_module(model: Any, in_graph: Any, task: Task,
                   group_size: int = LENGTH_GROUP_SIZE,
                   thresholds: Optional[Sequence[float]] = None,
                   temperatures: Optional[Sequence[float]] = None) -> tuple[Any, dict[str, Any]]:
    """A tf.Module with the model's variables and tokenizer, and its signature functions.

    Args:
        model: a transformers TF sequence classifier.
        in_graph: the in-graph tokenizer (``tfemotion.tokenizers``), or None: the ``encoded``
            signatures only.
        task: Task. A multi-label task's probabilities are sigmoids, and its ``serving_default``
            returns which labels reach their threshold and their names.
        group_size: int. Texts per length group of the raw-text signatures (0: no groups).
        thresholds: sequence of float. A multi-label task's decision threshold per label.
        temperatures: sequence of float, optional. The run's calibration: every signature's
            probabilities (``classify``'s scores too) are the softmax / sigmoids of
            ``logits / T`` (one ``T``, or one per label); the ``logits`` the ``encoded``
            signatures return stay raw. Default: ``T = 1``.

    Returns:
        ``(module, {signature name: concrete function})``.
    """
    import tensorflow as tf

    if task.multi_label and (thresholds is None or len(thresholds) != task.num_labels):
        raise ValueError(f"a multi-label export needs one threshold per label "
                         f"({task.num_labels}). Received: thresholds={thresholds!r}")
    labels = list(task.label_names)
    if temperatures is not None and (len(temperatures) not in (1, task.num_labels)
                                     or not all(t > 0 for t in temperatures)):
        raise ValueError(f"temperatures must be positive, one or one per label "
                         f"({task.num_labels}). Received: temperatures={list(temperatures)!r}")
    # [1] or [num_labels]: either broadcasts over the logits' [batch, num_labels].
    scale = tf.constant(list(temperatures) if temperatures is not None else [1.0], tf.float32)

    module = tf.Module()
    # Track the variables, not the Keras model: saving the model object itself would make
    # TensorFlow serialise every Keras layer, which is slow and not needed for serving.
    module.model_variables = list(model.variables)

    def scores(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        logits = tf.cast(logits, tf.float32)
        calibrated = logits / scale
        probabilities = (tf.sigmoid(calibrated) if task.multi_label
                         else tf.nn.softmax(calibrated, axis=-1))
        return {LOGITS: logits, PROBABILITIES: probabilities}

    # One trace of the model, called by every other signature. Nothing here (nor in the
    # tokenizers) needs AutoGraph: their loops are tf.while_loop. Without it the model traces in
    # a third less time (transformers' Python is not rewritten).
    ids = (INPUT_IDS, ATTENTION_MASK)
    module.encoded = tf.function(
        scores, autograph=False,
        input_signature=[tf.TensorSpec([None, None], tf.int32, name=k) for k in ids])
    module.encoded_int64 = tf.function(
        lambda input_ids, attention_mask: module.encoded(tf.cast(input_ids, tf.int32),
                                                         tf.cast(attention_mask, tf.int32)),
        autograph=False,
        input_signature=[tf.TensorSpec([None, None], tf.int64, name=k) for k in ids])
    signatures = {ENCODED: module.encoded.get_concrete_function(),
                  ENCODED_INT64: module.encoded_int64.get_concrete_function()}
    if in_graph is None:
        return module, signatures
    module.tokenizer = in_graph

    def probabilities_by_length(text):
        encoded = in_graph(text)
        return run_in_length_groups(module.encoded, encoded[INPUT_IDS],
                                     encoded[ATTENTION_MASK], len(labels), group_size)

    def predict(text):
        probabilities = probabilities_by_length(text)
        if task.multi_label:
            return multi_label_outputs(probabilities, labels, thresholds)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {LABEL: tf.gather(tf.constant(labels), label_id), LABEL_ID: label_id,
                PROBABILITIES: probabilities}

    def classify(inputs):
        parsed = tf.io.parse_example(inputs, {TEXT: tf.io.FixedLenFeature([], tf.string)})
        probabilities = probabilities_by_length(parsed[TEXT])
        classes = tf.tile(tf.constant(labels)[None, :], [tf.shape(inputs)[0], 1])
        return {CLASSES: classes, SCORES: probabilities}

    def tokenize(text):
        # Padded to the export's max length, not to the longest text of the batch: with large
        # batch splitting TF Serving joins the parts of one request run in different batches,
        # which must agree on every dimension but the first.
        encoded = in_graph(text)
        padding = [[0, 0], [0, in_graph.max_length - tf.shape(encoded[INPUT_IDS])[1]]]
        return {INPUT_IDS: tf.pad(encoded[INPUT_IDS], padding, constant_values=in_graph.pad_id),
                ATTENTION_MASK: tf.pad(encoded[ATTENTION_MASK], padding)}

    for name, function, key in ((PREDICT, predict, TEXT), (CLASSIFY, classify, EXAMPLES),
                                (TOKENIZE, tokenize, TEXT)):
        spec = tf.TensorSpec([None], tf.string, name=key)
        setattr(module, name, tf.function(function, input_signature=[spec], autograph=False))
        signatures[name] = getattr(module, name).get_concrete_function()
    return module, signatures


def multi_label_outputs(probabilities: Any, labels: list[str],
                         thresholds: Sequence[float]) -> dict[str, Any]:
    """``predicted``: probability >= the label's threshold; ``labels``: the predicted names
    first (in label order), then empty strings, so every row has the same width."""
    import tensorflow as tf

    predicted = probabilities >= tf.constant(thresholds, tf.float32)[None, :]
    order = tf.argsort(tf.cast(~predicted, tf.int32), axis=1, stable=True)
    names = tf.gather(tf.constant(labels), order)
    names = tf.where(tf.gather(predicted, order, batch_dims=1), names, "")
    return {PROBABILITIES: probabilities, PREDICTED: predicted, LABELS: names}


def run_in_length_groups(encoded: Any, input_ids: Any, attention_mask: Any,
                          num_labels: int, group_size: int = LENGTH_GROUP_SIZE) -> Any:
    """Probabilities for a batch, computed on groups of similar-length texts (in-graph).

    Texts are sorted by length, cut into groups of ``group_size``, each group trimmed to its own
    longest text, and the results are put back in the batch's order. Padding does not change a
    text's result, so this equals one call on the whole batch, for less work. ``group_size`` 0:
    one call on the whole batch.
    """
    import tensorflow as tf

    if group_size == 0:  # one pass over the whole batch (the tokenizer padded it to its longest)
        return encoded(input_ids, attention_mask)[PROBABILITIES]
    lengths = tf.reduce_sum(attention_mask, axis=1)
    order = tf.argsort(lengths, stable=True)
    count = tf.shape(input_ids)[0]
    groups = (count + group_size - 1) // group_size
    results = tf.TensorArray(tf.float32, size=count, element_shape=[num_labels])

    def one_group(index, results):
        rows = order[index * group_size: tf.minimum((index + 1) * group_size, count)]
        width = tf.reduce_max(tf.gather(lengths, rows))
        probabilities = encoded(tf.gather(input_ids, rows)[:, :width],
                                tf.gather(attention_mask, rows)[:, :width])[PROBABILITIES]
        return index + 1, results.scatter(rows, probabilities)

    _, results = tf.while_loop(lambda index, _: index < groups, one_group, (0, results))
    return tf.reshape(results.stack(), [count, num_labels])
