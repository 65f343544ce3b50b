"""Export: a fine-tuned classifier as a SavedModel that stock TensorFlow Serving runs.

- ``signatures``: the serving contract (signature names, tensor keys, files, version folders)
  that the exporter, the client, the development server and ``predict`` share;
- ``record``: the export's typed description (``assets.extra/tfemotion_export.json``);
- ``graph``: the ``tf.Module`` with the model, the in-graph tokenizer and the signatures;
- ``warmup``: TF Serving's warm-up requests;
- ``exporter``: ``export_run`` / ``export_model``: write, verify, publish atomically;
- ``verification``: the check in a fresh process with TensorFlow alone;
- ``servable``: an export loaded as TensorFlow Serving loads it (a session), also run by path in
  the environment of a TF Serving release.

``verification.py`` and ``servable.py`` also run as scripts in processes that must not import
tfemotion; they load their siblings by path, so they stay in this folder together.
"""

from tfemotion.export.exporter import ExportVerificationError, export_model, export_run
from tfemotion.export.record import ExportRecord

__all__ = ["ExportRecord", "ExportVerificationError", "export_model", "export_run"]
