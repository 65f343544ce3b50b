"""An export loaded the way TensorFlow Serving loads it: a TF1 session, SignatureDef tensor names.

Stock ``tensorflow_model_server`` does not call TensorFlow 2's ``tf.saved_model.load``: it loads
the MetaGraph tagged ``serve`` into a session, runs the restore op, then the init op (which
builds the hash tables of the in-graph tokenizer, with asset files fed by path), and answers each
request with ``Session::Run``, feeding and fetching the tensors that the SignatureDef names
(``saved_model_bundle_factory.cc``; ``predict_util.cc``). ``SessionServable`` does the same, so
what passes here is what TensorFlow Serving runs. It also checks what the server binary could not
run (``scan_ops``) and replays the export's warm-up file as the server does before a version
takes traffic (``replay_warmup``).

This module imports only TensorFlow (and TensorFlow Serving's protos to read warm-up records),
nothing of tfemotion: the fresh-process export check loads it by path, and it runs as a script in
another environment that has the TensorFlow of the TensorFlow Serving release being targeted::

    python servable.py EXPORT_DIR        # prints a JSON report; exit status 1 on failure

Example:
    >>> servable = SessionServable(export_dir)  # BASE/NAME/VERSION
    >>> servable.run("serving_default", {"text": np.array([b"i feel great"])})["label"].shape
    (1,)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

if __package__:  # imported as tfemotion.export.servable
    from tfemotion.export.signatures import MAX_WARMUP_RECORDS, PREDICT, WARMUP_FILE
else:  # loaded by path (the fresh-process check, another environment): the sibling file alone
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "tfemotion_signatures", Path(__file__).resolve().with_name("signatures.py"))
    _signatures = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_signatures)
    MAX_WARMUP_RECORDS, PREDICT, WARMUP_FILE = (_signatures.MAX_WARMUP_RECORDS,
                                                _signatures.PREDICT, _signatures.WARMUP_FILE)

SERVE_TAG = "serve"
# Ops that run Python: the server binary has no Python interpreter.
PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


class ServableError(RuntimeError):
    """A request the servable cannot run; ``code`` is the gRPC status TensorFlow Serving gives.

    Attributes:
        code: str. gRPC status name (``INVALID_ARGUMENT``, ``FAILED_PRECONDITION``...).
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class SessionServable:
    """One SavedModel version, loaded into a session as TensorFlow Serving loads it.

    Args:
        path: str or Path. The version folder (``BASE/NAME/VERSION``).
        session_config: a ``tf.compat.v1.ConfigProto`` for the session, as TF Serving's
            ``--tensorflow_session_config_file`` gives one (see ``read_session_config``);
            ``None``: TensorFlow's defaults, as the server without that flag.

    Attributes:
        path: Path. The version folder.
        signature_defs: dict. SignatureDef protos by key, as the server reports them.

    Raises:
        ValueError: no MetaGraph tagged ``serve``.

    Example:
        >>> sorted(SessionServable(export_dir).signature_defs)
        ['__saved_model_init_op', 'classify', 'encoded', 'encoded_int64', 'serving_default', 'tokenize']
    """

    def __init__(self, path: Any, session_config: Optional[Any] = None):
        self.path = Path(path)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        with self.graph.as_default(), _no_deprecation_notice():
            # restore op, then the init op (tables, assets): what the server runs at load time
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG],
                                                              str(self.path))
        self.meta_graph = meta_graph
        self.signature_defs = dict(meta_graph.signature_def)

    def signature(self, key: str) -> Any:
        """The SignatureDef named ``key``; FAILED_PRECONDITION (as the server) when absent."""
        if key not in self.signature_defs or key.startswith("__"):
            keys = sorted(k for k in self.signature_defs if not k.startswith("__"))
            raise ServableError("FAILED_PRECONDITION", f"Serving signature key \"{key}\" not "
                                f"found. The model has {keys}")
        return self.signature_defs[key]

    def run(self, key: str, inputs: dict[str, np.ndarray],
            output_keys: Optional[list[str]] = None) -> dict[str, np.ndarray]:
        """Feed ``inputs`` by the SignatureDef's tensor names; fetch its outputs by theirs.

        Like the server, only the input names are checked (all of them, no others); dtypes and
        shapes are the session's business, and its errors keep their gRPC code.
        """
        signature = self.signature(key)
        missing, unknown = set(signature.inputs) - set(inputs), set(inputs) - set(signature.inputs)
        if missing or unknown:
            raise ServableError("INVALID_ARGUMENT", f"input size does not match signature: "
                                f"signature '{key}' takes {sorted(signature.inputs)}; missing "
                                f"{sorted(missing)}, unknown {sorted(unknown)}")
        wanted = list(output_keys or sorted(signature.outputs))
        feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
        fetches = [signature.outputs[k].name for k in wanted]
        try:
            values = self.session.run(fetches, feed_dict=feeds)
        except tf.errors.OpError as error:
            raise ServableError(_code_name(error.error_code), error.message) from None
        except (TypeError, ValueError) as error:  # a feed that cannot become the input's dtype
            raise ServableError("INVALID_ARGUMENT", str(error)) from None
        return dict(zip(wanted, values))

    def close(self) -> None:
        """Release the session."""
        self.session.close()


def _no_deprecation_notice() -> Any:
    """Silence TensorFlow's "load is deprecated" notice: the TF1 loader is the point here."""
    try:
        from tensorflow.python.util import deprecation

        return deprecation.silence()
    except (ImportError, AttributeError):  # a TensorFlow without it: the notice stays
        import contextlib

        return contextlib.nullcontext()


def read_session_config(path: Any) -> Any:
    """The text ``ConfigProto`` of ``path``, as TF Serving's ``--tensorflow_session_config_file``.

    The server then overwrites the thread counts with its own flags
    (``--tensorflow_session_parallelism``, default 0: TensorFlow picks), so they are reset here
    too: a file that sets them would behave differently here and in production.

    Raises:
        ValueError: the file cannot be read or parsed; the message names the file and the line.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".config", delete=False) as f:
        ...     _ = f.write("graph_options { rewrite_options { function_optimization: OFF } }")
        >>> read_session_config(f.name).graph_options.rewrite_options.function_optimization
        2
    """
    from google.protobuf import text_format

    try:
        text = Path(path).read_text(encoding="utf-8")
        config = text_format.Parse(text, tf.compat.v1.ConfigProto())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        where = (f", line {error.GetLine()}" if isinstance(error, text_format.ParseError)
                 and error.GetLine() else "")
        raise ValueError(f"Cannot read the session config {path}{where}: {error} (a text "
                         "tensorflow.ConfigProto, as TF Serving's "
                         "--tensorflow_session_config_file reads)") from None
    config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = 0
    return config


def scan_ops(path: Any) -> list[str]:
    """Ops of the export that stock TensorFlow Serving cannot run; ``[]`` when it can run all.

    Looks at every node of the ``serve`` graph and of its function library: ops that call
    Python (``py_func``) and ops this TensorFlow does not register (custom ops, such as
    tf-text's, which each server release links at its own version, or not at all).

    Example:
        >>> scan_ops(export_dir)
        []
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    for meta_graph in model.meta_graphs:
        if SERVE_TAG not in meta_graph.meta_info_def.tags:
            continue
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
        functions = {f.signature.name for f in meta_graph.graph_def.library.function}
        ops -= functions  # calls of library functions are not ops
    problems = [f"{op} (runs Python)" for op in sorted(ops & PYTHON_OPS)]
    problems += [f"{op} (not a core TensorFlow op)" for op in sorted(ops - PYTHON_OPS)
                 if op_def_registry.get(op) is None]
    return problems


def warmup_records(path: Any) -> list[Any]:
    """The ``PredictionLog`` records of the export's warm-up file (``[]`` without one).

    Raises:
        ValueError: more than 1,000 records (TensorFlow Serving refuses such a file).
    """
    from tensorflow_serving.apis import prediction_log_pb2

    file = Path(path) / WARMUP_FILE
    if not file.is_file():
        return []
    records = []
    for raw in tf.data.TFRecordDataset(str(file)).as_numpy_iterator():
        records.append(prediction_log_pb2.PredictionLog.FromString(raw))
        if len(records) > MAX_WARMUP_RECORDS:
            raise ValueError(f"{file} holds more than {MAX_WARMUP_RECORDS} records; TensorFlow "
                             "Serving refuses it")
    return records


def replay_warmup(servable: Any) -> int:
    """Run every warm-up record, as the server does before the version takes traffic.

    ``servable`` is a SessionServable, or anything with its ``path``, ``signature`` and ``run``
    (the development server passes a loaded version whose ``run`` goes through its batching
    scheduler, as TensorFlow Serving warms up through the batching session).

    Predict records feed their inputs to their signature; Classify records feed their
    ``tf.Example`` list (context merged into each example) to the classification signature.

    Returns:
        The number of records replayed.

    Raises:
        ServableError: a record fails (the server would then fail the load); the message names
            the record.
    """
    records = warmup_records(servable.path)
    for index, log in enumerate(records):
        kind = log.WhichOneof("log_type")
        try:
            if kind == "predict_log":
                request = log.predict_log.request
                servable.run(request.model_spec.signature_name or PREDICT,
                             {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
            elif kind == "classify_log":
                request = log.classify_log.request
                key = request.model_spec.signature_name or PREDICT
                (input_key,) = servable.signature(key).inputs
                servable.run(key, {input_key: serialized_examples(request.input)})
            else:
                raise ServableError("UNIMPLEMENTED", f"{kind} records are not replayed")
        except ServableError as error:
            raise ServableError(error.code, f"warm-up record {index} ({kind}): {error.message}") \
                from None
    return len(records)


def serialized_examples(input_proto: Any) -> np.ndarray:
    """The serialized ``tf.Example`` list of a Classify request's ``Input`` (context merged)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = list(input_proto.example_list.examples)
    elif kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context
        examples = []
        for example in input_proto.example_list_with_context.examples:
            merged = type(context)()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            examples.append(merged)
    else:
        raise ServableError("INVALID_ARGUMENT", "Input is empty: set input.example_list")
    return np.array([e.SerializeToString() for e in examples], dtype=object)


def check(path: Any) -> dict[str, Any]:
    """Load an export as TensorFlow Serving does, scan its ops, replay its warm-up: a report.

    Returns:
        ``{"tensorflow", "tensorflow_serving_api", "signatures", "bad_ops", "warmup_records",
        "failures", "passed"}``.

    Example:
        >>> report = check(export_dir)
        >>> report["passed"], report["warmup_records"]
        (True, 8)
    """
    report: dict[str, Any] = {"tensorflow": tf.__version__, "export": str(path), "failures": [],
                              "tensorflow_serving_api": _installed("tensorflow-serving-api")}
    report["bad_ops"] = scan_ops(path)
    if report["bad_ops"]:
        report["failures"].append(f"ops stock TensorFlow Serving cannot run: {report['bad_ops']}")
    try:
        servable = SessionServable(path)
        report["signatures"] = sorted(k for k in servable.signature_defs if not k.startswith("__"))
        report["warmup_records"] = replay_warmup(servable)
        servable.close()
    except Exception as error:  # the report says what failed; the caller decides
        report["failures"].append(f"{type(error).__name__}: {error}")
    report["passed"] = not report["failures"]
    return report


def _installed(package: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _code_name(number: int) -> str:
    names = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
             4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
             7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
             10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL",
             14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
    return names.get(number, "UNKNOWN")


if __name__ == "__main__":
    result = check(sys.argv[1])
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)
