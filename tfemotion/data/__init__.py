"""Data: labelled texts from the hub or local files, their task, and a first look at them.

- ``formats``: one split file (``.txt``, ``.csv``, ``.jsonl``) read and checked line by line;
- ``loading``: ``load_splits`` (hub, folder, file, URL), ``save_splits``, and
  ``split_sources`` (the file and line of each text);
- ``encoding``: ``task_of`` the loaded splits, ``tokenize``, the targets a model learns from;
- ``texts``: texts to classify, one per line (``predict`` and ``query`` read them);
- ``exploration``: class balance and text lengths, as the book's chapter 2 looks at them.
"""

from tfemotion.data.encoding import label_names, task_of, to_dataframe, tokenize, with_targets
from tfemotion.data.formats import DataError
from tfemotion.data.loading import load_splits, save_splits, split_sources
from tfemotion.data.texts import read_texts

__all__ = ["DataError", "label_names", "load_splits", "read_texts", "save_splits", "split_sources",
           "task_of", "to_dataframe", "tokenize", "with_targets"]
