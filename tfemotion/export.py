"""SavedModel export for TensorFlow Serving: raw text in, labels and probabilities out.

The export holds the fine-tuned classifier and the in-graph tokenizer of
:mod:`tfemotion.tokenizer` (core TensorFlow ops only, so stock TensorFlow Serving, CPU or GPU
image, runs it with no Python and no custom op), behind these signatures:

- ``serving_default``: ``text`` string ``[batch]`` -> ``label`` string ``[batch]``,
  ``label_id`` int64 ``[batch]``, ``probabilities`` float ``[batch, num_labels]``;
- ``classify`` (TF Serving's Classify API): ``inputs`` string ``[batch]``, serialized
  ``tf.Example`` protos with a bytes feature ``text`` -> ``classes`` string
  ``[batch, num_labels]`` (the label names), ``scores`` float ``[batch, num_labels]``;
- ``tokenize``: ``text`` -> ``input_ids``, ``attention_mask`` int32 ``[batch, length]``, padded
  to the longest text of the batch;
- ``encoded``: ``input_ids``, ``attention_mask`` int32 ``[batch, length]`` -> ``logits``,
  ``probabilities`` float ``[batch, num_labels]``;
- ``encoded_int64``: the same with int64 inputs.

Label names come from the model config's ``id2label``. ``assets.extra`` holds TF Serving's
warm-up requests and ``tfemotion_export.json`` (labels, max length, tokenizer settings).
Checkpoints whose tokenizer is not WordPiece (SentencePiece, byte-level BPE) get the
``encoded`` signatures only; the report says why. The export is written to a hidden
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
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from tfemotion.config import DataConfig, ExportConfig

logger = logging.getLogger(__name__)

TOLERANCE = 1e-5  # largest accepted probability difference from the Keras model
_WARMUP_FILE = ("assets.extra", "tf_serving_warmup_requests")
# What the export says about itself (labels, max length, tokenizer), beside the SavedModel.
EXPORT_INFO_FILE = Path("assets.extra") / "tfemotion_export.json"
_WARMUP_TEXTS = ("i feel happy today", "i am so scared of what comes next",
                 "i love this", "he was furious and i felt angry", "what a surprise",
                 "i feel sad and lonely", "", "Ça va? 中文 😀")
# Raw-text signatures run the model on groups of this many texts of similar length, so a
# batch of short tweets does not pay for its longest one (2-3x less work on the emotion data).
LENGTH_GROUP_SIZE = 16
_VERSION_DIR = re.compile(r"^[0-9]+$")
_ENCODED = {"input_ids": "int32", "attention_mask": "int32"}
_SCORES = {"logits": "float32", "probabilities": "float32"}
# name -> input and output keys with dtypes: the table of the module docstring.
SIGNATURES: dict[str, dict[str, dict[str, str]]] = {
    "serving_default": {"inputs": {"text": "string"},
                        "outputs": {"label": "string", "label_id": "int64",
                                    "probabilities": "float32"}},
    "classify": {"inputs": {"inputs": "string"},
                 "outputs": {"classes": "string", "scores": "float32"}},
    "tokenize": {"inputs": {"text": "string"}, "outputs": dict(_ENCODED)},
    "encoded": {"inputs": dict(_ENCODED), "outputs": dict(_SCORES)},
    "encoded_int64": {"inputs": {k: "int64" for k in _ENCODED}, "outputs": dict(_SCORES)},
}
ENCODED_SIGNATURES = ("encoded", "encoded_int64")


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
        config: ExportConfig. Base path, name, version, max length, verification.

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
    report = export_model(run.model, config, texts=texts, label_names=record.label_names)
    report.update(run=str(run.root), validation_texts=len(texts), validation_note=note)
    return report


def export_model(model_dir: str | Path, config: ExportConfig,
                 texts: Optional[Sequence[str]] = None,
                 label_names: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Export a saved sequence classifier folder (no run folder needed).

    Args:
        model_dir: str or Path. Folder with a ``TFAutoModelForSequenceClassification``
            checkpoint and its tokenizer (``save_pretrained`` output; safetensors-only folders
            work too).
        config: ExportConfig. Base path, name, version, max length, verification.
        texts: sequence of str. Extra texts to verify on (e.g. validation texts), besides the
            stress list. Default: none.
        label_names: sequence of str. Used only when the model config's ``id2label`` holds
            generic names (``LABEL_0``...).

    Returns:
        ``{"path", "base_path", "name", "version", "signatures", "raw_text", "unsupported_reason",
        "max_length", "labels", "tokenizer", "warmup_requests", "verification", "seconds"}``.

    Raises:
        FileExistsError: ``config.version`` already exists under ``BASE/NAME``.
        ExportVerificationError: the verification failed (nothing is published).

    Example:
        >>> config = ExportConfig(base_path="/tmp/models")
        >>> export_model("runs/emotion/run/model", config)  # doctest: +SKIP
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    started = time.perf_counter()
    model_root = Path(config.base_path) / config.name
    _check_version_free(model_root, config.version)
    tokenizer = load_tokenizer(str(model_dir))
    model = load_tf_model(TFAutoModelForSequenceClassification, str(model_dir))
    report = _export(model, tokenizer, config, model_root, list(texts or ()), label_names)
    report["source"] = str(model_dir)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def next_version(model_root: str | Path) -> int:
    """The next free version number under ``BASE/NAME``: one more than the highest, or 1.

    Example:
        >>> next_version("/no/such/folder")
        1
    """
    root = Path(model_root)
    versions = [int(p.name) for p in root.iterdir() if _VERSION_DIR.match(p.name)] \
        if root.is_dir() else []
    return max(versions, default=0) + 1


def find_export(path: Any) -> Optional[Path]:
    """The SavedModel version folder at ``path``, or None when ``path`` is not an export.

    ``path`` may be a version folder (holds ``saved_model.pb``) or a model folder whose
    integer-named subfolders are versions (the highest is taken).

    Example:
        >>> find_export("no/such/folder") is None
        True
    """
    folder = Path(str(path)).expanduser()
    if (folder / "saved_model.pb").is_file():
        return folder
    if folder.is_dir():
        versions = [p for p in folder.iterdir()
                    if _VERSION_DIR.match(p.name) and (p / "saved_model.pb").is_file()]
        if versions:
            return max(versions, key=lambda p: int(p.name))
    return None


# The export itself ---------------------------------------------------------------------------


def _export(model: Any, tokenizer: Any, config: ExportConfig, model_root: Path, texts: list[str],
            label_names: Optional[Sequence[str]]) -> dict[str, Any]:
    import tensorflow as tf

    from tfemotion.checkpoints import model_max_length
    from tfemotion.tokenizer import UnsupportedTokenizerError, from_hf_tokenizer

    max_length = model_max_length(tokenizer, model.config, config.max_length)
    labels = _labels(model.config, label_names)
    try:
        in_graph, reason = from_hf_tokenizer(tokenizer, max_length), None
    except UnsupportedTokenizerError as error:
        in_graph, reason = None, str(error)
        logger.warning("Exporting the 'encoded' signatures only (ids in, no raw text): %s", reason)
    module, signatures = _serving_module(model, in_graph, labels)
    model_root.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_root))
    try:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        warmup = _write_warmup(temporary, config.name, tokenizer, in_graph is not None,
                               (texts or list(_WARMUP_TEXTS))[:8], max_length)
        info = {"labels": labels, "max_length": max_length, "raw_text": in_graph is not None,
                "unsupported_reason": reason, "signatures": sorted(signatures),
                "tokenizer": dict(in_graph.description if in_graph else {},
                                  **{"class": type(tokenizer).__name__})}
        (temporary / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        verification = None
        if config.verify:
            verification = _verify(temporary, model, tokenizer, texts, labels, max_length,
                                   raw_text=in_graph is not None)
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


def _serving_module(model: Any, in_graph: Any, labels: list[str]) -> tuple[Any, dict[str, Any]]:
    """A tf.Module with the model's variables and tokenizer, and its signature functions."""
    import tensorflow as tf

    module = tf.Module()
    # Track the variables, not the Keras model: saving the model object itself would make
    # TensorFlow serialise every Keras layer, which is slow and not needed for serving.
    module.model_variables = list(model.variables)

    def scores(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        logits = tf.cast(logits, tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    # One trace of the model, called by every other signature.
    module.encoded = tf.function(
        scores, input_signature=[tf.TensorSpec([None, None], tf.int32, name=k) for k in _ENCODED])
    module.encoded_int64 = tf.function(
        lambda input_ids, attention_mask: module.encoded(tf.cast(input_ids, tf.int32),
                                                         tf.cast(attention_mask, tf.int32)),
        input_signature=[tf.TensorSpec([None, None], tf.int64, name=k) for k in _ENCODED])
    signatures = {name: getattr(module, name).get_concrete_function()
                  for name in ENCODED_SIGNATURES}
    if in_graph is None:
        return module, signatures
    module.tokenizer = in_graph

    def probabilities_by_length(text):
        encoded = in_graph(text)
        return _run_in_length_groups(module.encoded, encoded["input_ids"],
                                     encoded["attention_mask"], len(labels))

    def predict(text):
        probabilities = probabilities_by_length(text)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"label": tf.gather(tf.constant(labels), label_id), "label_id": label_id,
                "probabilities": probabilities}

    def classify(inputs):
        parsed = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string)})
        probabilities = probabilities_by_length(parsed["text"])
        classes = tf.tile(tf.constant(labels)[None, :], [tf.shape(inputs)[0], 1])
        return {"classes": classes, "scores": probabilities}

    def tokenize(text):
        return in_graph(text)

    for name, function, key in (("serving_default", predict, "text"),
                                ("classify", classify, "inputs"), ("tokenize", tokenize, "text")):
        spec = tf.TensorSpec([None], tf.string, name=key)
        setattr(module, name, tf.function(function, input_signature=[spec]))
        signatures[name] = getattr(module, name).get_concrete_function()
    return module, signatures


def _run_in_length_groups(encoded: Any, input_ids: Any, attention_mask: Any,
                          num_labels: int, group_size: int = LENGTH_GROUP_SIZE) -> Any:
    """Probabilities for a batch, computed on groups of similar-length texts (in-graph).

    Texts are sorted by length, cut into groups of ``group_size``, each group trimmed to its own
    longest text, and the results are put back in the batch's order. Padding does not change a
    text's result, so this equals one call on the whole batch, for less work.
    """
    import tensorflow as tf

    lengths = tf.reduce_sum(attention_mask, axis=1)
    order = tf.argsort(lengths, stable=True)
    count = tf.shape(input_ids)[0]
    groups = (count + group_size - 1) // group_size
    results = tf.TensorArray(tf.float32, size=count, element_shape=[num_labels])

    def one_group(index, results):
        rows = order[index * group_size: tf.minimum((index + 1) * group_size, count)]
        width = tf.reduce_max(tf.gather(lengths, rows))
        probabilities = encoded(tf.gather(input_ids, rows)[:, :width],
                                tf.gather(attention_mask, rows)[:, :width])["probabilities"]
        return index + 1, results.scatter(rows, probabilities)

    _, results = tf.while_loop(lambda index, _: index < groups, one_group, (0, results))
    return tf.reshape(results.stack(), [count, num_labels])


def _write_warmup(folder: Path, name: str, tokenizer: Any, raw_text: bool, texts: list[str],
                  max_length: int) -> int:
    """TF Serving replays these PredictionLog records before the version takes traffic."""
    import tensorflow as tf
    from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                         prediction_log_pb2)

    def spec(signature):
        return model_pb2.ModelSpec(name=name, signature_name=signature)

    logs = []
    if raw_text:
        for batch in (texts[:1], texts):
            request = predict_pb2.PredictRequest(model_spec=spec("serving_default"))
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
        examples = [_example(text) for text in texts[:2]]
        request = classification_pb2.ClassificationRequest(
            model_spec=spec("classify"),
            input=input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples)))
        logs.append(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog(request=request)))
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=True,
                        return_tensors="np")
    request = predict_pb2.PredictRequest(model_spec=spec("encoded"))
    for key in _ENCODED:
        request.inputs[key].CopyFrom(tf.make_tensor_proto(encoded[key].astype("int32")))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
    path = folder.joinpath(*_WARMUP_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def _example(text: str) -> Any:
    import tensorflow as tf

    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={"text": feature}))


def _verify(folder: Path, model: Any, tokenizer: Any, texts: list[str], labels: list[str],
            max_length: int, raw_text: bool) -> dict[str, Any]:
    from tfemotion._verify_export import verify_in_fresh_process

    signatures = {k: v for k, v in SIGNATURES.items() if raw_text or k in ENCODED_SIGNATURES}
    report = verify_in_fresh_process(folder, model, tokenizer, texts, labels, max_length,
                                     raw_text, signatures, TOLERANCE)
    if not report.get("passed"):
        raise ExportVerificationError(
            "The export failed verification and was not published: "
            + "; ".join(report.get("failures") or ["no report"]), report)
    return report


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
        return [str(t) for t in splits["validation"]["text"]], None
    if "test" in splits:
        return [str(t) for t in splits["test"]["text"]], "no validation split: used the test split"
    return [], "the run's data has neither a validation nor a test split"
