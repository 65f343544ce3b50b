"""SavedModel export for TensorFlow Serving: raw text in, labels and probabilities out.

The export holds the fine-tuned classifier and the in-graph tokenizer of
:mod:`tfemotion.tokenizer` (core TensorFlow ops only, so stock TensorFlow Serving, CPU or GPU
image, runs it with no Python and no custom op), behind the signatures of
:mod:`tfemotion.signatures` (``serving_default``, ``classify``, ``tokenize``, ``encoded``,
``encoded_int64``).

Label names come from the model config's ``id2label``. ``assets.extra`` holds TF Serving's
warm-up requests (one per batch size the server may run) and ``tfemotion_export.json`` (labels,
max length, length grouping, tokenizer settings, the TensorFlow that wrote it).
The raw-text signatures tokenize in the graph (WordPiece, byte-level BPE and SentencePiece
Unigram, see :mod:`tfemotion.tokenizer`); checkpoints whose tokenizer none of them reproduces get
the ``encoded`` signatures only, and the report says why. The export is written to a hidden
temporary folder beside the versions, checked in a fresh process that imports only TensorFlow
(token ids equal to the Hugging Face tokenizer's, probabilities within 1e-5 of the Keras
model's), and only then renamed to ``BASE/NAME/VERSION``: TensorFlow Serving never sees a
half-written or failing version, and an existing version is never overwritten.

Example:
    >>> from tfemotion.config import ExportConfig
    >>> config = ExportConfig(base_path="serving/models")
    >>> report = export_run("runs/emotion/run", config)  # doctest: +SKIP
    >>> report["path"]  # doctest: +SKIP
    'serving/models/emotion/1'
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from tfemotion.config import HF_MULTI_LABEL, MULTI_LABEL, SINGLE_LABEL, DataConfig, ExportConfig
from tfemotion.signatures import (ATTENTION_MASK, CLASSES, CLASSIFY, ENCODED, ENCODED_INT64,
                                  ENCODED_SIGNATURES, EXAMPLES, EXPORT_INFO_FILE, INPUT_IDS,
                                  LABEL, LABEL_ID, LABELS, LOGITS, PREDICT, PREDICTED,
                                  PROBABILITIES, SCORES, TEXT, TOKENIZE, WARMUP_FILE,
                                  next_version, signature_table)

logger = logging.getLogger(__name__)

TOLERANCE = 1e-5  # largest accepted probability difference from the Keras model
# ... per compute precision of the export, against the float32 model. bfloat16 keeps 8 bits of
# mantissa (float16 10): a text near a decision boundary may move by some hundredths.
TOLERANCES = {"float32": TOLERANCE, "bfloat16": 0.1, "float16": 0.02}
# Smallest share of the verification texts that must get the float32 model's labels.
MIN_LABEL_AGREEMENT = 0.995
# The Python of an environment with the TensorFlow of the TensorFlow Serving release in
# serving/.env (make test builds .venv-serving): exports are also checked there.
SERVING_PYTHON_VARIABLE = "TFEMOTION_SERVING_PYTHON"
_WARMUP_TEXTS = ("i feel happy today", "i am so scared of what comes next",
                 "i love this", "he was furious and i felt angry", "what a surprise",
                 "i feel sad and lonely", "", "Ça va? 中文 😀")
# Raw-text signatures run the model on groups of this many texts of similar length, so a
# batch of short tweets does not pay for its longest one (2-3x less work on the emotion data).
LENGTH_GROUP_SIZE = ExportConfig.length_group_size


class ExportVerificationError(RuntimeError):
    """The fresh-process check of an export failed; nothing was published.

    Attributes:
        report: dict. The verification report (``failures`` lists what went wrong).
    """

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def export_run(run_dir: str | Path, config: ExportConfig) -> dict[str, Any]:
    """Export the classifier of a ``tfemotion train`` run folder for TensorFlow Serving.

    Reads the run's saved model and its record (data settings, label names, maximum length;
    see ``tfemotion.runfolder``), verifies on the run's validation texts plus the built-in
    stress list, and publishes ``BASE/NAME/VERSION``. Without ``config.max_length`` the run's
    maximum length is used.

    Args:
        run_dir: str or Path. The run folder, or the ``OUT`` folder of ``tfemotion run``.
        config: ExportConfig. Base path, name, version, max length, verification, compute
            precision (a bfloat16 or float16 export is verified against the float32 model).

    Returns:
        The report of :func:`export_model`, plus ``run`` and ``validation_texts``.

    Raises:
        FileNotFoundError: the folder is not a finished run.
        FileExistsError: ``config.version`` already exists.
        ExportVerificationError: the verification failed (nothing is published).

    Example:
        >>> export_run("runs/emotion/run", ExportConfig(base_path="/tmp/models"))  # doctest: +SKIP
    """
    from tfemotion.runfolder import RunRecord, find_run

    run = find_run(run_dir)
    record = RunRecord.load(run)
    texts, note = _validation_texts(record.data)
    if config.max_length is None:
        config = config.replace(max_length=record.max_length)
    report = export_model(run.model, config, texts=texts, label_names=record.label_names,
                          thresholds=record.thresholds)
    report.update(run=str(run.root), validation_texts=len(texts), validation_note=note)
    return report


def export_model(model_dir: str | Path, config: ExportConfig,
                 texts: Optional[Sequence[str]] = None,
                 label_names: Optional[Sequence[str]] = None,
                 thresholds: Optional[Sequence[float]] = None) -> dict[str, Any]:
    """Export a saved sequence classifier folder (no run folder needed).

    Args:
        model_dir: str or Path. Folder with a ``TFAutoModelForSequenceClassification``
            checkpoint and its tokenizer (``save_pretrained`` output; safetensors-only folders
            work too).
        config: ExportConfig. Base path, name, version, max length, verification, compute
            precision (a bfloat16 or float16 export is verified against the float32 model).
        texts: sequence of str. Extra texts to verify on (e.g. validation texts), besides the
            stress list. Default: none.
        label_names: sequence of str. Used only when the model config's ``id2label`` holds
            generic names (``LABEL_0``...).
        thresholds: sequence of float. A multi-label model's decision threshold per label (a
            run's tuned ones); default 0.5 each. The model config's ``problem_type`` tells a
            multi-label model (``multi_label_classification``).

    Returns:
        ``{"path", "base_path", "name", "version", "signatures", "raw_text", "unsupported_reason",
        "max_length", "labels", "precision", "tokenizer", "warmup_requests", "verification",
        "seconds"}``.

    Raises:
        FileExistsError: ``config.version`` already exists under ``BASE/NAME``.
        ExportVerificationError: the verification failed (nothing is published).

    Example:
        >>> config = ExportConfig(base_path="/tmp/models")
        >>> export_model("runs/emotion/run/model", config)  # doctest: +SKIP
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model, load_tokenizer
    from tfemotion.hardware import precision_policy

    started = time.perf_counter()
    model_root = Path(config.base_path) / config.name
    _check_version_free(model_root, config.version)
    tokenizer = load_tokenizer(str(model_dir))
    model = load_tf_model(TFAutoModelForSequenceClassification, str(model_dir))
    served = model
    if config.precision != "float32":  # the float32 model stays the reference of verification
        with precision_policy(f"mixed_{config.precision}"):
            served = load_tf_model(TFAutoModelForSequenceClassification, str(model_dir))
    report = _export(served, tokenizer, config, model_root, list(texts or ()), label_names,
                     thresholds, reference=model)
    report["source"] = str(model_dir)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


# The export itself ---------------------------------------------------------------------------


def _export(model: Any, tokenizer: Any, config: ExportConfig, model_root: Path, texts: list[str],
            label_names: Optional[Sequence[str]],
            thresholds: Optional[Sequence[float]] = None,
            reference: Optional[Any] = None) -> dict[str, Any]:
    """Write, verify (against ``reference``, the float32 model; default ``model``) and publish."""
    import tensorflow as tf

    from tfemotion.checkpoints import model_max_length
    from tfemotion.tokenizer import UnsupportedTokenizerError, from_hf_tokenizer

    max_length = model_max_length(tokenizer, model.config, config.max_length)
    labels = _labels(model.config, label_names)
    thresholds = _thresholds(model.config, labels, thresholds)
    try:
        in_graph, reason = from_hf_tokenizer(tokenizer, max_length), None
    except UnsupportedTokenizerError as error:
        in_graph, reason = None, str(error)
        logger.warning("Exporting the 'encoded' signatures only (ids in, no raw text): %s", reason)
    module, signatures = _serving_module(model, in_graph, labels, config.length_group_size,
                                         thresholds)
    model_root.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_root))
    try:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        warmup = _write_warmup(temporary, config.name, tokenizer, in_graph is not None,
                               list(texts or _WARMUP_TEXTS), max_length,
                               config.warmup_batch_sizes)
        info = {"labels": labels, "max_length": max_length, "raw_text": in_graph is not None,
                "unsupported_reason": reason, "signatures": sorted(signatures),
                "length_group_size": config.length_group_size,
                "precision": config.precision,
                "warmup_batch_sizes": list(config.warmup_batch_sizes),
                "problem_type": MULTI_LABEL if thresholds else SINGLE_LABEL,
                "thresholds": thresholds,
                "tensorflow_version": tf.__version__,
                "tokenizer": dict(in_graph.description if in_graph else {},
                                  **{"class": type(tokenizer).__name__})}
        (temporary / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        verification = None
        if config.verify:
            verification = _verify(temporary, reference or model, tokenizer, texts, labels,
                                   max_length, raw_text=in_graph is not None,
                                   thresholds=thresholds, precision=config.precision)
            info["tensorflow_serving_check"] = _check_with_tensorflow_serving(temporary)
            (temporary / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2),
                                                      encoding="utf-8")
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; TF Serving may run as another user
        path, version = _publish(temporary, model_root, config.version)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    logger.debug("Exported %s (signatures %s)", path, sorted(signatures))
    return dict(info, path=str(path), base_path=str(config.base_path), name=config.name,
                version=version, warmup_requests=warmup, verification=verification)


def _labels(model_config: Any, label_names: Optional[Sequence[str]]) -> list[str]:
    id2label = {int(k): str(v) for k, v in (model_config.id2label or {}).items()}
    labels = [id2label.get(i, f"LABEL_{i}") for i in range(model_config.num_labels)]
    generic = all(name == f"LABEL_{i}" for i, name in enumerate(labels))
    if generic and label_names and len(label_names) == len(labels):
        logger.info("The model config has generic label names; using %s", list(label_names))
        return [str(name) for name in label_names]
    return labels


def _thresholds(model_config: Any, labels: list[str],
                thresholds: Optional[Sequence[float]]) -> Optional[list[float]]:
    """A multi-label model's decision thresholds (0.5 each unless given); None for single-label."""
    if getattr(model_config, "problem_type", None) != HF_MULTI_LABEL:
        if thresholds is not None:
            raise ValueError("thresholds are for multi-label models; this model's problem_type "
                             f"is {getattr(model_config, 'problem_type', None)!r}")
        return None
    from tfemotion.multilabel import DEFAULT_THRESHOLD

    values = ([DEFAULT_THRESHOLD] * len(labels) if thresholds is None
              else [float(t) for t in thresholds])
    if len(values) != len(labels) or not all(0.0 < t < 1.0 for t in values):
        raise ValueError(f"thresholds must be one number in (0, 1) per label ({len(labels)}). "
                         f"Received: thresholds={list(thresholds or [])}")
    return values


def _serving_module(model: Any, in_graph: Any, labels: list[str],
                    group_size: int = LENGTH_GROUP_SIZE,
                    thresholds: Optional[Sequence[float]] = None) -> tuple[Any, dict[str, Any]]:
    """A tf.Module with the model's variables and tokenizer, and its signature functions.

    With ``thresholds`` (a multi-label model) probabilities are sigmoids, and
    ``serving_default`` returns which labels reach their threshold and their names.
    """
    import tensorflow as tf

    module = tf.Module()
    # Track the variables, not the Keras model: saving the model object itself would make
    # TensorFlow serialise every Keras layer, which is slow and not needed for serving.
    module.model_variables = list(model.variables)

    def scores(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        logits = tf.cast(logits, tf.float32)
        probabilities = (tf.sigmoid(logits) if thresholds is not None
                         else tf.nn.softmax(logits, axis=-1))
        return {LOGITS: logits, PROBABILITIES: probabilities}

    # One trace of the model, called by every other signature.
    ids = (INPUT_IDS, ATTENTION_MASK)
    module.encoded = tf.function(
        scores, input_signature=[tf.TensorSpec([None, None], tf.int32, name=k) for k in ids])
    module.encoded_int64 = tf.function(
        lambda input_ids, attention_mask: module.encoded(tf.cast(input_ids, tf.int32),
                                                         tf.cast(attention_mask, tf.int32)),
        input_signature=[tf.TensorSpec([None, None], tf.int64, name=k) for k in ids])
    signatures = {ENCODED: module.encoded.get_concrete_function(),
                  ENCODED_INT64: module.encoded_int64.get_concrete_function()}
    if in_graph is None:
        return module, signatures
    module.tokenizer = in_graph

    def probabilities_by_length(text):
        encoded = in_graph(text)
        return _run_in_length_groups(module.encoded, encoded[INPUT_IDS],
                                     encoded[ATTENTION_MASK], len(labels), group_size)

    def predict(text):
        probabilities = probabilities_by_length(text)
        if thresholds is not None:
            return _multi_label_outputs(probabilities, labels, thresholds)
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
        setattr(module, name, tf.function(function, input_signature=[spec]))
        signatures[name] = getattr(module, name).get_concrete_function()
    return module, signatures


def _multi_label_outputs(probabilities: Any, labels: list[str],
                         thresholds: Sequence[float]) -> dict[str, Any]:
    """``predicted``: probability >= the label's threshold; ``labels``: the predicted names
    first (in label order), then empty strings, so every row has the same width."""
    import tensorflow as tf

    predicted = probabilities >= tf.constant(thresholds, tf.float32)[None, :]
    order = tf.argsort(tf.cast(~predicted, tf.int32), axis=1, stable=True)
    names = tf.gather(tf.constant(labels), order)
    names = tf.where(tf.gather(predicted, order, batch_dims=1), names, "")
    return {PROBABILITIES: probabilities, PREDICTED: predicted, LABELS: names}


def _run_in_length_groups(encoded: Any, input_ids: Any, attention_mask: Any,
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


def _write_warmup(folder: Path, name: str, tokenizer: Any, raw_text: bool, texts: list[str],
                  max_length: int, batch_sizes: Sequence[int]) -> int:
    """TF Serving replays these PredictionLog records before the version takes traffic.

    Raw-text exports get one ``serving_default`` request per batch size (texts repeated as
    needed), so each batch shape the server will run is set up beforehand, plus a Classify
    request; every export gets an ``encoded`` request.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                         prediction_log_pb2)

    def spec(signature):
        return model_pb2.ModelSpec(name=name, signature_name=signature)

    def batch_of(size):
        return [texts[i % len(texts)] for i in range(size)]

    logs = []
    if raw_text:
        for size in sorted(set(batch_sizes)):
            request = predict_pb2.PredictRequest(model_spec=spec(PREDICT))
            request.inputs[TEXT].CopyFrom(tf.make_tensor_proto(batch_of(size), dtype=tf.string))
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
        examples = [_example(text) for text in batch_of(2)]
        request = classification_pb2.ClassificationRequest(
            model_spec=spec(CLASSIFY),
            input=input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples)))
        logs.append(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog(request=request)))
    encoded = tokenizer(batch_of(8), truncation=True, max_length=max_length, padding=True,
                        return_tensors="np")
    request = predict_pb2.PredictRequest(model_spec=spec(ENCODED))
    for key in (INPUT_IDS, ATTENTION_MASK):
        request.inputs[key].CopyFrom(tf.make_tensor_proto(encoded[key].astype("int32")))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
    path = folder / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def _example(text: str) -> Any:
    import tensorflow as tf

    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={TEXT: feature}))


def _verify(folder: Path, model: Any, tokenizer: Any, texts: list[str], labels: list[str],
            max_length: int, raw_text: bool,
            thresholds: Optional[Sequence[float]] = None,
            precision: str = "float32") -> dict[str, Any]:
    from tfemotion._verify_export import verify_in_fresh_process

    table = signature_table(multi_label=thresholds is not None)
    signatures = {k: v for k, v in table.items() if raw_text or k in ENCODED_SIGNATURES}
    report = verify_in_fresh_process(folder, model, tokenizer, texts, labels, max_length,
                                     raw_text, signatures, TOLERANCES[precision], thresholds,
                                     MIN_LABEL_AGREEMENT)
    if not report.get("passed"):
        raise ExportVerificationError(
            "The export failed verification and was not published: "
            + "; ".join(report.get("failures") or ["no report"]), report)
    return report


_SERVING_CHECK_TIMEOUT = 600  # seconds; loading and warming up takes 5-20 s here


def _check_with_tensorflow_serving(folder: Path) -> Optional[dict[str, Any]]:
    """Load the export in the environment of the TensorFlow Serving release (``make test``
    builds ``.venv-serving`` with its TensorFlow), through the session path, replaying its
    warm-up; None when no such environment is set (``TFEMOTION_SERVING_PYTHON``).

    Raises:
        ExportVerificationError: the export does not load or warm up there.
    """
    import subprocess

    python = os.environ.get(SERVING_PYTHON_VARIABLE)
    if not python:
        logger.info("Not checked against a TensorFlow Serving release: set %s to the Python of "
                    "an environment with its TensorFlow (make test builds .venv-serving)",
                    SERVING_PYTHON_VARIABLE)
        return None
    script = Path(__file__).with_name("servable.py")
    try:
        done = subprocess.run([python, "-I", str(script), str(folder)], capture_output=True,
                              text=True, timeout=_SERVING_CHECK_TIMEOUT,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        report = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        report = {"passed": False, "failures": [
            f"{python} took more than {_SERVING_CHECK_TIMEOUT} s and was stopped"]}
    except OSError as error:  # not an executable, gone
        report = {"passed": False, "failures": [f"cannot run {python}: {error}"]}
    except json.JSONDecodeError:
        report = {"passed": False, "failures": [f"{python} exited with {done.returncode}: "
                                                f"{done.stderr.strip()[-500:]}"]}
    result = {"tensorflow": report.get("tensorflow"),
              "tensorflow_serving": report.get("tensorflow_serving_api"),
              "warmup_records": report.get("warmup_records"), "passed": report.get("passed")}
    if not report.get("passed"):
        raise ExportVerificationError(
            "The export does not load in TensorFlow Serving's TensorFlow "
            f"({result['tensorflow']}); nothing was published: " + "; ".join(
                report.get("failures") or ["no report"]), report)
    logger.info("Checked with TensorFlow %s (TensorFlow Serving %s): loads, warms up",
                result["tensorflow"], result["tensorflow_serving"])
    return result


# Publishing ----------------------------------------------------------------------------------


def _check_version_free(model_root: Path, version: Optional[int]) -> None:
    if version is not None and (model_root / str(version)).exists():
        raise FileExistsError(
            f"{model_root / str(version)} exists; versions are never overwritten. Choose another "
            f"version or leave it unset for the next one ({next_version(model_root)}). "
            f"Received: version={version}")


def _publish(temporary: Path, model_root: Path, version: Optional[int]) -> tuple[Path, int]:
    """Rename the verified folder to its version (atomic on one filesystem)."""
    candidate = version or next_version(model_root)
    while True:
        _check_version_free(model_root, version)
        target = model_root / str(candidate)
        try:
            if not target.exists():
                os.rename(temporary, target)
                return target, candidate
        except OSError:
            if version is not None or not target.exists():
                raise
        candidate += 1  # another export took this number meanwhile


def _validation_texts(data_config: DataConfig) -> tuple[list[str], Optional[str]]:
    """The run's validation texts (test texts if it has none); a note when unavailable."""
    try:
        from tfemotion.data import load_splits

        splits = load_splits(data_config)
    except Exception as error:  # the export still runs on the stress list
        logger.warning("Verifying without the run's validation texts: %s", error)
        return [], f"could not load the run's data: {error}"
    if "validation" in splits:
        return [str(t) for t in splits["validation"]["text"]], None  # the data's column
    if "test" in splits:
        return [str(t) for t in splits["test"]["text"]], "no validation split: used the test split"
    return [], "the run's data has neither a validation nor a test split"
