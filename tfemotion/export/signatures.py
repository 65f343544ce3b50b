"""The serving contract: what an export offers and where its files are, in one place.

The export writes it, the gRPC client, the development server and ``predict`` read it: signature
names, their input and output keys with dtypes, the warm-up file, the export's own description
and the version-folder rule of TensorFlow Serving's model base path (``BASE/NAME/VERSION``,
VERSION an integer; anything else is ignored, which is how a half-written export stays hidden).

Signatures of a raw-text export:

- ``serving_default``: ``text`` string ``[batch]`` -> ``label`` string ``[batch]``, ``label_id``
  int64 ``[batch]``, ``probabilities`` float ``[batch, num_labels]``; for a multi-label model
  (``signature_table(multi_label=True)``): ``probabilities`` (sigmoid) float, ``predicted`` bool
  (probability >= the label's tuned threshold) and ``labels`` string, all ``[batch, num_labels]``
  (``labels``: each text's predicted label names first, in label order, then ``""``); both
  also ``windows`` int64 ``[batch]``: how many windows of ``max_length`` tokens each text was
  read in (1 for a text within the window; always 1 for an export that truncates);
- ``classify`` (the Classify API): ``inputs`` serialized ``tf.Example`` protos with a bytes
  feature ``text`` -> ``classes`` string and ``scores`` float, both ``[batch, num_labels]``;
- ``tokenize``: ``text`` -> ``input_ids``, ``attention_mask`` int32 ``[batch, max_length]``
  (padded to the export's max length, so that the parts of a request split over batches join;
  a long text's first window, as the truncating tokenizer gives it);
- ``encoded`` / ``encoded_int64``: ``input_ids``, ``attention_mask`` -> ``logits``,
  ``probabilities``.

Every probability (``classify``'s scores too) is calibrated: the softmax / sigmoids of the
logits divided by the run's temperatures (``ExportRecord.temperatures``; none: ``T = 1``); the
``logits`` are the model's raw ones.

Example:
    >>> SIGNATURES[PREDICT]["inputs"]
    {'text': 'string'}
    >>> is_version_folder("3"), is_version_folder(".tmp-export-x"), is_version_folder("3.partial")
    (True, False, False)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

# Signature names.
PREDICT = "serving_default"
CLASSIFY = "classify"
TOKENIZE = "tokenize"
ENCODED = "encoded"
ENCODED_INT64 = "encoded_int64"
ENCODED_SIGNATURES = (ENCODED, ENCODED_INT64)
RAW_TEXT_SIGNATURES = (PREDICT, CLASSIFY, TOKENIZE)

# Tensor keys.
TEXT = "text"  # raw-text input, and the bytes feature of classify's tf.Examples
EXAMPLES = "inputs"  # serialized tf.Examples: the one input of a Classify signature
LABEL, LABEL_ID, PROBABILITIES, LOGITS = "label", "label_id", "probabilities", "logits"
CLASSES, SCORES = "classes", "scores"  # the outputs a Classify signature may have
PREDICTED, LABELS = "predicted", "labels"  # multi-label serving_default
WINDOWS = "windows"  # serving_default: the windows of max_length tokens each text was read in
INPUT_IDS, ATTENTION_MASK = "input_ids", "attention_mask"

_IDS = {INPUT_IDS: "int32", ATTENTION_MASK: "int32"}
_SCORE_OUTPUTS = {LOGITS: "float32", PROBABILITIES: "float32"}
# name -> input and output keys with dtypes.
SIGNATURES: dict[str, dict[str, dict[str, str]]] = {
    PREDICT: {"inputs": {TEXT: "string"},
              "outputs": {LABEL: "string", LABEL_ID: "int64", PROBABILITIES: "float32",
                          WINDOWS: "int64"}},
    CLASSIFY: {"inputs": {EXAMPLES: "string"},
               "outputs": {CLASSES: "string", SCORES: "float32"}},
    TOKENIZE: {"inputs": {TEXT: "string"}, "outputs": dict(_IDS)},
    ENCODED: {"inputs": dict(_IDS), "outputs": dict(_SCORE_OUTPUTS)},
    ENCODED_INT64: {"inputs": {k: "int64" for k in _IDS}, "outputs": dict(_SCORE_OUTPUTS)},
}


def signature_table(multi_label: bool = False) -> dict[str, dict[str, dict[str, str]]]:
    """The signature table of a single-label (``SIGNATURES``) or multi-label export.

    Example:
        >>> signature_table(multi_label=True)[PREDICT]["outputs"]
        {'probabilities': 'float32', 'predicted': 'bool', 'labels': 'string', 'windows': 'int64'}
    """
    table = {name: {side: dict(keys) for side, keys in spec.items()}
             for name, spec in SIGNATURES.items()}
    if multi_label:
        table[PREDICT]["outputs"] = {PROBABILITIES: "float32", PREDICTED: "bool",
                                     LABELS: "string", WINDOWS: "int64"}
    return table


# Files inside a version folder.
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TensorFlow Serving refuses a warm-up file with more
EXPORT_INFO_FILE = Path("assets.extra") / "tfemotion_export.json"
# Every other file with its SHA-256, written last (tfemotion.export.manifest).
MANIFEST_FILE = Path("assets.extra") / "tfemotion.sha256"

_VERSION_DIR = re.compile(r"^[0-9]+$")


def is_version_folder(name: Any) -> bool:
    """True for a folder name TensorFlow Serving takes as a version: an integer.

    Example:
        >>> is_version_folder("12"), is_version_folder("v12")
        (True, False)
    """
    return bool(_VERSION_DIR.match(Path(str(name)).name))


def versions(model_root: Any) -> list[int]:
    """The version numbers under ``BASE/NAME`` (folders named by an integer), sorted.

    Example:
        >>> versions("/no/such/folder")
        []
    """
    root = Path(str(model_root))
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and is_version_folder(p.name))


def next_version(model_root: Any) -> int:
    """The next free version number under ``BASE/NAME``: one more than the highest, or 1.

    Example:
        >>> next_version("/no/such/folder")
        1
    """
    return max(versions(model_root), default=0) + 1


def find_export(path: Any) -> Optional[Path]:
    """The SavedModel version folder at ``path``, or None when ``path`` is not an export.

    ``path`` may be a version folder (holds ``saved_model.pb``) or a model folder whose
    integer-named subfolders are versions (the highest holding a SavedModel is taken).

    Example:
        >>> find_export("no/such/folder") is None
        True
    """
    folder = Path(str(path)).expanduser()
    if (folder / "saved_model.pb").is_file():
        return folder
    found = [v for v in versions(folder) if (folder / str(v) / "saved_model.pb").is_file()]
    return folder / str(found[-1]) if found else None
