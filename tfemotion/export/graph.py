"""The graph of an export: the model's variables, the in-graph tokenizer, the signature functions.

``serving_module`` builds the ``tf.Module`` that ``tf.saved_model.save`` writes, with one traced
model (``encoded``) that every other signature calls: the raw-text ones tokenize in the graph
and run the model on groups of similar-length texts (``run_in_length_groups``), so a batch of
short tweets does not pay for its longest one. With ``windows`` (:class:`Windows`), a text
longer than the tokenizer's ``max_length`` is read in overlapping windows
(:mod:`tfemotion.tokenizers.windows`), all windows of the batch run through the model together,
and each text's logits are pooled over its windows. The signature names and keys are those of
``tfemotion.export.signatures``.

Example:
    >>> module, signatures = serving_module(model, None, task)  # no tokenizer: ids in only
    >>> sorted(signatures)
    ['encoded', 'encoded_int64']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from tfemotion.export.signatures import (ATTENTION_MASK, CLASSES, CLASSIFY, ENCODED,
                                         ENCODED_INT64, EXAMPLES, INPUT_IDS, LABEL, LABEL_ID,
                                         LABELS, LOGITS, PREDICT, PREDICTED, PROBABILITIES,
                                         SCORES, TEXT, TOKENIZE, WINDOWS)
from tfemotion.task import Task

# Raw-text signatures run the model on groups of this many texts of similar length, so a
# batch of short tweets does not pay for its longest one (2-3x less work on the emotion data).
LENGTH_GROUP_SIZE = 12
# ... and fewer than this many padded tokens per group: 12 emotion tweets of up to 83 tokens (the
# validation and test splits' longest have 69 and 66) still run together, while windows of 512
# tokens run one by one, so a text's short last window is not padded to a full one (which would
# make a 1,000-token text cost 3 windows of 512). 1,024 would let two 512-token windows pair up.
LENGTH_GROUP_TOKENS = 1000


@dataclass(frozen=True)
class Windows:
    """How the raw-text signatures read texts longer than the window.

    Attributes:
        stride: int. Tokens consecutive windows share (Hugging Face's ``stride``).
        max_windows: int. Most windows one run of the graph may take (INVALID_ARGUMENT past it).
        pooling: str. How a text's window logits become its logits: ``mean`` or ``max``.
    """

    stride: int
    max_windows: int
    pooling: str = "mean"


def serving_module(model: Any, in_graph: Any, task: Task,
                   group_size: int = LENGTH_GROUP_SIZE,
                   thresholds: Optional[Sequence[float]] = None,
                   temperatures: Optional[Sequence[float]] = None,
                   windows: Optional[Windows] = None) -> tuple[Any, dict[str, Any]]:
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
        windows: Windows, optional. Read long texts in windows; None: cut them at the
            tokenizer's ``max_length`` (``serving_default``'s ``windows`` is then 1).

    Returns:
        ``(module, {signature name: concrete function})``.
    """
    import tensorflow as tf

    from tfemotion.tokenizers.windows import TEXT_OF_WINDOW, pool_windows, text_windows

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

    def activation(logits):
        # Windows pool the raw logits; the calibration applies to the text's pooled logits (for a
        # text of one window, exactly what ``encoded`` returns).
        calibrated = logits / scale
        return (tf.sigmoid(calibrated) if task.multi_label
                else tf.nn.softmax(calibrated, axis=-1))

    def read(text):
        """Each text's probabilities and the windows it took."""
        if windows is None:
            encoded = in_graph(text)
            logits = run_in_length_groups(module.encoded, encoded[INPUT_IDS],
                                          encoded[ATTENTION_MASK], len(labels), group_size,
                                          output=LOGITS)
            return activation(logits), tf.ones_like(text, tf.int64)
        cut = text_windows(in_graph, text, windows.stride, windows.max_windows)
        logits = run_in_length_groups(module.encoded, cut[INPUT_IDS], cut[ATTENTION_MASK],
                                      len(labels), group_size, output=LOGITS)
        pooled = pool_windows(logits, cut[TEXT_OF_WINDOW], tf.size(text, out_type=tf.int64),
                              windows.pooling)
        return activation(pooled), cut[WINDOWS]

    def predict(text):
        probabilities, count = read(text)
        if task.multi_label:
            return dict(multi_label_outputs(probabilities, labels, thresholds), **{WINDOWS: count})
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {LABEL: tf.gather(tf.constant(labels), label_id), LABEL_ID: label_id,
                PROBABILITIES: probabilities, WINDOWS: count}

    def classify(inputs):
        parsed = tf.io.parse_example(inputs, {TEXT: tf.io.FixedLenFeature([], tf.string)})
        probabilities, _ = read(parsed[TEXT])
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
                          num_labels: int, group_size: int = LENGTH_GROUP_SIZE,
                          output: str = PROBABILITIES,
                          group_tokens: int = LENGTH_GROUP_TOKENS) -> Any:
    """The model's ``output`` (probabilities or logits) for a batch, computed on groups of
    similar-length texts (in-graph).

    Texts are sorted by length and cut into groups of at most ``group_size`` texts and at most
    ``group_tokens`` padded tokens (a text longer than that runs alone), each group trimmed to
    its own longest text, and the results are put back in the batch's order. Padding does not
    change a text's result, so this equals one call on the whole batch, for less work.
    ``group_size`` 0: one call on the whole batch.
    """
    import tensorflow as tf

    if group_size == 0:  # one pass over the whole batch (the tokenizer padded it to its longest)
        return encoded(input_ids, attention_mask)[output]
    lengths = tf.reduce_sum(attention_mask, axis=1)
    order = tf.argsort(lengths, stable=True)
    sorted_lengths = tf.gather(lengths, order)
    count = tf.shape(input_ids)[0]
    results = tf.TensorArray(tf.float32, size=count, element_shape=[num_labels])
    sizes = tf.range(1, group_size + 1)

    def one_group(start, results):
        # Lengths are sorted: a group of k texts is as wide as its k-th; take the most texts
        # that fit the token budget (at least one).
        last = tf.minimum(start + sizes - 1, count - 1)
        fits = (start + sizes <= count) & (sizes * tf.gather(sorted_lengths, last) <= group_tokens)
        size = tf.maximum(tf.reduce_sum(tf.cast(fits, tf.int32)), 1)
        rows = order[start: start + size]
        width = tf.reduce_max(tf.gather(lengths, rows))
        values = encoded(tf.gather(input_ids, rows)[:, :width],
                         tf.gather(attention_mask, rows)[:, :width])[output]
        return start + size, results.scatter(rows, values)

    _, results = tf.while_loop(lambda start, _: start < count, one_group, (0, results))
    return tf.reshape(results.stack(), [count, num_labels])
