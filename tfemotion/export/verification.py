"""Checks a fresh SavedModel export in a process that imports nothing but TensorFlow.

Both sides live here. The parent (:func:`verify_in_fresh_process`, called by
:mod:`tfemotion.export.exporter`) computes the expected answers, the Hugging Face tokenizer's ids and
the Keras model's probabilities, batch by batch, and runs this file as
``python -I verification.py PAYLOAD.json REPORT.json`` (``-I``: neither this folder nor
``PYTHONPATH`` on ``sys.path``). The child (:func:`main`) imports only TensorFlow, loads the
export, checks the signature table and every answer, and writes a report listing every failure;
so the check proves that the export loads and answers without transformers, tokenizers or
tfemotion in the process. The export is published only when the report has no failure.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

logger = logging.getLogger(__name__)
# Texts per checked batch. classify and encoded_int64 are checked on each group's first batch:
# 16 keeps the stress list's 100,000-character texts (last) out of it, where they would cost an
# in-graph SentencePiece Unigram tokenizer seconds each (one Viterbi step per character).
_BATCH = 16
_TIMEOUT = 3600
_FOREIGN = ("transformers", "tokenizers", "tfemotion", "torch", "tensorflow_text", "keras_hub")
_MAX_EXAMPLES = 5


# Parent side -------------------------------------------------------------------------------


def verify_in_fresh_process(folder: Path, model: Any, tokenizer: Any, texts: list[str],
                            labels: list[str], max_length: int, raw_text: bool,
                            signatures: dict[str, Any], tolerance: float,
                            thresholds: Any = None,
                            min_label_agreement: float = 1.0,
                            temperatures: Any = None,
                            windows: Any = None) -> dict[str, Any]:
    """Verify the export in ``folder`` in a fresh process; return the report (``passed``...).

    Args:
        folder: Path. The SavedModel folder (not yet published).
        model: TFPreTrainedModel. The float32 Keras classifier the export must answer like.
        tokenizer: PreTrainedTokenizerFast. Its Hugging Face tokenizer.
        texts: list of str. Texts to check besides the stress list.
        labels: list of str. Label names in id order.
        max_length: int. Truncation length of the export.
        raw_text: bool. Whether the export has the raw-text signatures.
        signatures: dict. Expected signatures: name -> {"inputs"|"outputs": {key: dtype}}.
        tolerance: float. Largest accepted probability difference.
        min_label_agreement: float. Smallest accepted share of texts on which every signature
            predicts the Keras model's labels (a reduced-precision export may flip a few
            borderline texts).
        windows: the export's ``Windows`` (stride, max_windows, pooling), or None when it
            truncates: its raw-text signatures must then answer like the Keras model on Hugging
            Face's overflowing windows, pooled per text, and refuse a text past the cap.
        thresholds: list of float, optional. A multi-label export's decision thresholds: its
            probabilities are sigmoids, and ``serving_default`` must predict exactly the labels
            whose probability reaches them.
        temperatures: list of float, optional. The calibration built into the export: the
            expected probabilities are those of the Keras model's ``logits / T``.

    Returns:
        The child's report, plus ``validation_texts`` and ``stress_texts`` counts.

    Example:
        >>> from pathlib import Path
        >>> from tfemotion.export.graph import Windows
        >>> from tfemotion.export.record import ExportRecord
        >>> from tfemotion.export.signatures import signature_table
        >>> record = ExportRecord.load(export_dir)  # its calibration and windows
        >>> report = verify_in_fresh_process(
        ...     Path(export_dir), model, tokenizer, ["so happy"], list(task.label_names), 64,
        ...     True, signature_table(), 1e-5, temperatures=record.temperatures,
        ...     windows=Windows(record.stride, record.max_windows, record.window_pooling))
        >>> report["passed"], report["token_id_mismatches"], report["foreign_modules"]
        (True, 0, [])
    """
    from tqdm.auto import tqdm

    from tfemotion.tokenizers import STRESS_TEXTS

    pad_id = tokenizer.pad_token_id or 0
    forward = tf.function(lambda ids, mask: model(input_ids=ids, attention_mask=mask,
                                                  training=False).logits,
                          input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2)
    starts = [(group, begin) for group in (texts, list(STRESS_TEXTS))
              for begin in range(0, len(group), _BATCH)]
    batches, over_cap = [], []
    multi_label = thresholds is not None
    for group, begin in tqdm(starts, desc="expected answers", leave=False, disable=None):
        chunk = group[begin: begin + _BATCH]
        parts = [chunk]  # a truncating export: the chunk as it is
        if windows is not None:
            parts, past = _within_cap(tokenizer, chunk, max_length, windows)
            over_cap += past
        for part_index, part in enumerate(parts):
            ids = tokenizer(part, truncation=True, max_length=max_length)["input_ids"]
            batch = {"texts": part, "ids": ids, "first": begin == 0 and part_index == 0,
                     "probabilities": _keras_probabilities(forward, ids, pad_id, multi_label,
                                                           temperatures)}
            if windows is not None:
                batch.update(_windowed_probabilities(forward, tokenizer, part, max_length,
                                                     windows, pad_id, multi_label,
                                                     temperatures))
            batches.append(batch)
    payload = {"over_cap": over_cap, "export_dir": str(folder), "raw_text": raw_text,
               "batches": batches,
               "labels": labels, "signatures": signatures, "tolerance": tolerance,
               "pad_id": pad_id, "max_length": max_length, "thresholds": thresholds,
               "min_label_agreement": min_label_agreement}
    report = _run_fresh_process(payload)
    report.update(validation_texts=len(texts), stress_texts=len(STRESS_TEXTS))
    return report


def _keras_probabilities(forward: Any, ids: list[list[int]], pad_id: int,
                         multi_label: bool = False,
                         temperatures: Any = None) -> list[list[float]]:
    """The Keras model's probabilities (sigmoids when multi-label) of ``logits / T`` on Hugging
    Face ids, padded to the batch's longest."""
    padded, mask = _pad(ids, pad_id)
    logits = tf.cast(forward(tf.constant(padded, tf.int32), tf.constant(mask, tf.int32)),
                     tf.float32)
    if temperatures is not None:
        logits = logits / tf.constant(temperatures, tf.float32)
    return (tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits, axis=-1)).numpy().tolist()


def _window_ids(tokenizer: Any, texts: list[str], max_length: int,
                stride: int) -> tuple[list[list[int]], list[int]]:
    out = tokenizer(texts, truncation=True, max_length=max_length, stride=stride,
                    return_overflowing_tokens=True)
    return out["input_ids"], list(out["overflow_to_sample_mapping"])


def _within_cap(tokenizer: Any, texts: list[str], max_length: int,
                windows: Any) -> tuple[list[list[str]], list[str]]:
    """``texts`` in runs of consecutive texts that take at most ``max_windows`` windows, and the
    texts that alone take more (the export must refuse those)."""
    _, text_of = _window_ids(tokenizer, texts, max_length, windows.stride)
    counts = np.bincount(text_of, minlength=len(texts))
    parts, past, part, taken = [], [], [], 0
    for text, count in zip(texts, counts):
        if count > windows.max_windows:
            past.append(text)
            continue
        if taken + count > windows.max_windows:
            parts.append(part)
            part, taken = [], 0
        part.append(text)
        taken += count
    return [p for p in parts + [part] if p], past


def _windowed_probabilities(forward: Any, tokenizer: Any, texts: list[str], max_length: int,
                            windows: Any, pad_id: int, multi_label: bool,
                            temperatures: Any = None) -> dict[str, Any]:
    """The Keras model's answer on Hugging Face's windows: logits pooled per text, divided by
    the calibration's ``T``, then the activation; and each text's window count."""
    ids, text_of = _window_ids(tokenizer, texts, max_length, windows.stride)
    logits = []
    for begin in range(0, len(ids), _BATCH):  # windows of 512 tokens: a bounded batch
        padded, mask = _pad(ids[begin: begin + _BATCH], pad_id)
        logits.append(tf.cast(forward(tf.constant(padded, tf.int32),
                                      tf.constant(mask, tf.int32)), tf.float32).numpy())
    values = tf.constant(np.concatenate(logits), tf.float32)
    segments = tf.constant(text_of, tf.int64)
    pool = (tf.math.unsorted_segment_max if windows.pooling == "max"
            else tf.math.unsorted_segment_mean)
    pooled = pool(values, segments, len(texts))
    if temperatures is not None:
        pooled = pooled / tf.constant(temperatures, tf.float32)
    probabilities = tf.sigmoid(pooled) if multi_label else tf.nn.softmax(pooled, axis=-1)
    return {"text_probabilities": probabilities.numpy().tolist(),
            "windows": np.bincount(text_of, minlength=len(texts)).tolist()}


def _run_fresh_process(payload: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tfemotion-verify-") as work:
        payload_path, report_path = Path(work, "payload.json"), Path(work, "report.json")
        payload_path.write_text(json.dumps(payload), encoding="utf-8")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        logger.info("Verifying %s in a fresh process", payload["export_dir"])
        try:
            done = subprocess.run([sys.executable, "-I", __file__, str(payload_path),
                                   str(report_path)],
                                  env=env, capture_output=True, text=True, timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"passed": False, "failures": [
                f"the verifying process took more than {_TIMEOUT} s and was stopped"]}
        if done.returncode != 0 or not report_path.exists():
            tail = (done.stderr or "").strip().splitlines()[-5:]
            return {"passed": False, "failures": [
                f"the verifying process exited with {done.returncode}: {' | '.join(tail)}"]}
        return json.loads(report_path.read_text(encoding="utf-8"))


# Child side: TensorFlow only ----------------------------------------------------------------


def main(payload_path: str, report_path: str) -> int:
    """Check the export named in the payload; write the report. Run in a fresh process."""
    payload = json.loads(open(payload_path, encoding="utf-8").read())
    started = time.perf_counter()
    report = {"failures": [], "texts": 0, "token_id_mismatches": 0, "mismatch_examples": [],
              "max_abs_diff": {}, "label_agreement": {}, "checked_texts": {},
              "tolerance": payload["tolerance"],
              "min_label_agreement": payload["min_label_agreement"]}
    loaded = tf.saved_model.load(payload["export_dir"])
    report["signatures"] = _check_signatures(loaded, payload["signatures"], report["failures"])
    if not report["failures"]:
        for batch in payload["batches"]:
            _check_batch(loaded.signatures, batch, payload, report)
        _check_over_cap(loaded.signatures, payload, report)
        _check_as_tensorflow_serving(payload, report)
    foreign = sorted({m.split(".")[0] for m in sys.modules} & set(_FOREIGN))
    if foreign:
        report["failures"].append(f"the verifying process imported {foreign}")
    report["foreign_modules"] = foreign
    if report["token_id_mismatches"]:
        report["failures"].append(
            f"{report['token_id_mismatches']} of {report['texts']} texts got token ids that "
            f"differ from the Hugging Face tokenizer's, e.g. {report['mismatch_examples'][:2]}")
    for name, diff in report["max_abs_diff"].items():
        if not diff <= payload["tolerance"]:
            report["failures"].append(
                f"{name}: probabilities differ from the Keras model's by up to {diff:.3g} "
                f"(tolerance {payload['tolerance']:g})")
    for name, (agreed, total) in report["label_agreement"].items():
        if total and agreed / total < payload["min_label_agreement"]:
            report["failures"].append(
                f"{name}: the same labels as the Keras model on {agreed} of {total} texts "
                f"({agreed / total:.1%}; at least {payload['min_label_agreement']:.1%} needed)")
    report["passed"] = not report["failures"]
    report["seconds"] = round(time.perf_counter() - started, 2)
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return 0


def _check_as_tensorflow_serving(payload: dict, report: dict) -> None:
    """The same answers through TensorFlow Serving's loading path (``servable.py``): a session
    from the ``serve`` MetaGraph, SignatureDef tensor names; plus its op scan and warm-up."""
    servable_module = _load_by_path("servable", Path(__file__).with_name("servable.py"))
    bad_ops = servable_module.scan_ops(payload["export_dir"])
    if bad_ops:
        report["failures"].append(f"ops stock TensorFlow Serving cannot run: {bad_ops}")
    records = None
    report["tensorflow_serving_path"] = {"bad_ops": bad_ops, "warmup_records": records}
    try:
        servable = servable_module.SessionServable(payload["export_dir"])
    except Exception as error:  # a report, not a traceback: the parent names the failure
        report["failures"].append(f"the session path cannot load the export: "
                                  f"{type(error).__name__}: {error}")
        return
    try:
        records = servable_module.replay_warmup(servable)
        session = _SessionSignatures(servable)
        for batch in payload["batches"]:
            _check_batch(session, batch, payload, report, tag=" (session)")
        _check_over_cap(session, payload, report, tag=" (session)")
    except Exception as error:
        message = (f"{error.code}: {error.message}" if isinstance(
            error, servable_module.ServableError) else f"{type(error).__name__}: {error}")
        report["failures"].append(f"through the session path: {message}")
    finally:
        servable.close()
    report["tensorflow_serving_path"]["warmup_records"] = records


class _SessionSignatures:
    """``signatures[name](**inputs)`` over a SessionServable, answering like TF2 signatures."""

    def __init__(self, servable) -> None:
        self.servable = servable

    def __getitem__(self, name: str):
        def call(**inputs):
            arrays = {k: np.asarray(v) for k, v in inputs.items()}
            return {k: tf.constant(v) for k, v in self.servable.run(name, arrays).items()}
        return call


def _load_by_path(name: str, path: Path):
    """Import a sibling file as a top-level module: tfemotion itself stays out of the process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _check_signatures(loaded, expected: dict, failures: list) -> dict:
    """Compare each signature's input and output keys and dtypes with the table."""
    found = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        found[name] = {
            "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
            "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in outputs.items()},
        }
    if sorted(found) != sorted(expected):
        failures.append(f"signatures are {sorted(found)}, expected {sorted(expected)}")
        return found
    for name, spec in expected.items():
        for side in ("inputs", "outputs"):
            got = {k: v[0] for k, v in found[name][side].items()}
            if got != spec[side]:
                failures.append(f"{name} {side} are {got}, expected {spec[side]}")
    return found


def _check_batch(signatures, batch: dict, payload: dict, report: dict, tag: str = "") -> None:
    """Every signature's answers on one batch against the expected ones.

    ``tag`` tells the loading path apart in the report: "" for TF2's ``tf.saved_model.load``,
    " (session)" for TensorFlow Serving's; texts are counted once, on the first path.
    """
    texts, want_ids = batch["texts"], batch["ids"]
    want = np.asarray(batch["probabilities"], np.float32)
    # The raw-text signatures read long texts in windows (when the export does).
    want_text = np.asarray(batch.get("text_probabilities", batch["probabilities"]), np.float32)
    ids, mask = _pad(want_ids, payload["pad_id"])
    n = len(texts)
    # classify and encoded_int64 only adapt their inputs to the graph of serving_default and
    # encoded, which see every text: they are checked on the first batch of each text group.
    for name, dtype in (("encoded", tf.int32), ("encoded_int64", tf.int64)):
        if name == "encoded_int64" and not batch["first"]:
            continue
        _count(report, name + tag, n)
        out = signatures[name](input_ids=tf.constant(ids, dtype),
                               attention_mask=tf.constant(mask, dtype))
        _shape(report, name + tag, out["logits"], (n, want.shape[1]))
        _diff(report, name + tag, out["probabilities"].numpy(), want, payload["thresholds"])
    if not payload["raw_text"]:
        return
    if not tag:
        report["texts"] += n
    text = tf.constant([t.encode("utf-8") for t in texts], tf.string)
    _count(report, "tokenize" + tag, n)
    tokens = signatures["tokenize"](text=text)
    _compare_ids(report, texts, want_ids, tokens["input_ids"].numpy(),
                 tokens["attention_mask"].numpy(), payload["max_length"], tag)
    out = signatures["serving_default"](text=text)
    _count(report, "serving_default" + tag, n)
    _diff(report, "serving_default" + tag, out["probabilities"].numpy(), want_text,
          payload["thresholds"])
    want_windows = batch.get("windows", [1] * n)
    if out["windows"].numpy().tolist() != want_windows:
        report["failures"].append(f"serving_default{tag}: windows {out['windows'].numpy()[:8]} "
                                  f"are not Hugging Face's window counts {want_windows[:8]}")
    if payload.get("thresholds") is not None:
        _check_multi_label(out, payload, report, tag)
    else:
        _check_single_label(out, payload, report, tag, n)
    if not batch["first"]:
        return
    _count(report, "classify" + tag, n)
    examples = [_example(t) for t in texts]
    out = signatures["classify"](inputs=tf.constant(examples, tf.string))
    _diff(report, "classify" + tag, out["scores"].numpy(), want_text, payload["thresholds"])
    classes = out["classes"].numpy()
    if classes.shape != want.shape or any(
            [c.decode("utf-8") for c in row] != payload["labels"] for row in classes):
        report["failures"].append(f"classify{tag}: classes are not the label names in id order")


def _check_over_cap(signatures, payload: dict, report: dict, tag: str = "") -> None:
    """Each text that alone takes more windows than the cap is refused, naming the cap."""
    for text in payload.get("over_cap", []):
        _count(report, "over the window cap" + tag, 1)
        try:
            signatures["serving_default"](text=tf.constant([text.encode("utf-8")]))
        except Exception as error:  # InvalidArgumentError (TF2) or ServableError (session)
            message = str(getattr(error, "message", error))
            invalid = (isinstance(error, tf.errors.InvalidArgumentError)
                       or getattr(error, "code", None) == "INVALID_ARGUMENT")
            if invalid and "max_windows" in message:
                continue
            report["failures"].append(f"serving_default{tag}: a text past the window cap "
                                      f"failed without naming the cap: {message[:200]}")
            continue
        report["failures"].append(f"serving_default{tag}: a text past the window cap "
                                  f"({text[:40]!r}...) was answered")


def _check_single_label(out: dict, payload: dict, report: dict, tag: str, n: int) -> None:
    label_id = out["label_id"].numpy()
    labels = [payload["labels"][i] for i in label_id]
    if label_id.shape != (n,) or [b.decode("utf-8") for b in out["label"].numpy()] != labels:
        report["failures"].append(f"serving_default{tag}: label does not name label_id")
    if not np.array_equal(label_id, np.argmax(out["probabilities"].numpy(), axis=1)):
        report["failures"].append(f"serving_default{tag}: label_id is not the most probable label")


def _check_multi_label(out: dict, payload: dict, report: dict, tag: str) -> None:
    """``predicted`` is probability >= threshold; ``labels`` names exactly those, in order."""
    probabilities = out["probabilities"].numpy()
    predicted = out["predicted"].numpy()
    if not np.array_equal(predicted, probabilities >= np.asarray(payload["thresholds"],
                                                                 np.float32)):
        report["failures"].append(f"serving_default{tag}: predicted is not probability >= "
                                  "the label's threshold")
    names = out["labels"].numpy()
    for row, flags in zip(names, predicted):
        want = [n for n, on in zip(payload["labels"], flags) if on]
        want += [""] * (len(flags) - len(want))
        if [b.decode("utf-8") for b in row] != want:
            report["failures"].append(f"serving_default{tag}: labels do not name the predicted "
                                      "labels")
            return


def _count(report: dict, name: str, n: int) -> None:
    report["checked_texts"][name] = report["checked_texts"].get(name, 0) + n


def _pad(ids: list, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(row) for row in ids)
    padded = np.full((len(ids), width), pad_id, np.int64)
    mask = np.zeros((len(ids), width), np.int64)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return padded, mask


def _compare_ids(report: dict, texts: list, want_ids: list, ids: np.ndarray,
                 mask: np.ndarray, max_length: int, tag: str = "") -> None:
    if ids.shape != (len(texts), max_length) or mask.shape != ids.shape:
        report["failures"].append(
            f"tokenize{tag}: shape {list(ids.shape)}, expected {[len(texts), max_length]} (the "
            "export's max length)")
    for i, want in enumerate(want_ids):
        length = int(mask[i].sum())
        got = ids[i][:length].tolist()
        if got != want or mask[i][:length].min(initial=1) != 1:
            report["token_id_mismatches"] += 1  # either path: an export to refuse
            if len(report["mismatch_examples"]) < _MAX_EXAMPLES:
                report["mismatch_examples"].append(
                    {"text": texts[i][:200], "expected": want[:40], "got": got[:40]})


def _diff(report: dict, name: str, got: np.ndarray, want: np.ndarray,
          thresholds: Any = None) -> None:
    """The largest probability difference, and on how many texts the predicted labels agree
    (the most probable one; for a multi-label model, every label's side of its threshold)."""
    if got.shape != want.shape:
        report["failures"].append(f"{name}: probabilities shape {list(got.shape)}, "
                                  f"expected {list(want.shape)}")
        return
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    report["max_abs_diff"][name] = max(report["max_abs_diff"].get(name, 0.0), diff)
    if thresholds is None:
        same = np.argmax(got, axis=1) == np.argmax(want, axis=1)
    else:
        cut = np.asarray(thresholds, np.float32)
        same = np.all((got >= cut) == (want >= cut), axis=1)
    agreed, total = report["label_agreement"].get(name, (0, 0))
    report["label_agreement"][name] = (agreed + int(same.sum()), total + len(same))


def _shape(report: dict, name: str, tensor, shape: tuple) -> None:
    if tuple(tensor.shape) != shape:
        report["failures"].append(
            f"{name}: logits shape {tensor.shape.as_list()}, expected {list(shape)}")


def _example(text: str) -> bytes:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    example = tf.train.Example(features=tf.train.Features(feature={"text": feature}))
    return example.SerializeToString()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
