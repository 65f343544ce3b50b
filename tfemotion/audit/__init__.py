"""The label audit: which training labels are likely wrong (issue 28).

A model that trained on a text has learnt its label, wrong or not, so the audit asks models
that never saw it:

- ``folds``: K trainings with the run's own recipe, each predicting the fold it left out, give
  every training text out-of-fold probabilities (resumable, like a run);
- ``ranking``: confident learning (cleanlab) flags the texts whose given label those
  probabilities contradict, and ranks them;
- ``report``: ``OUT/audit/label_issues.csv``/``.md`` with each text's file and line, a heat
  map of given x suggested label, the count per label, the cost, what to do next;
- ``stage``: ``audit_labels``, the three in one call (``tfemotion audit``, ``run --audit``).

cleanlab comes with the ``audit`` extra (``pip install tfemotion[audit]``).
"""

from tfemotion.audit.folds import assign_folds, fold_recipe, out_of_fold
from tfemotion.audit.ranking import LabelIssues, rank_label_issues
from tfemotion.audit.report import write_report
from tfemotion.audit.stage import audit_labels

__all__ = ["LabelIssues", "assign_folds", "audit_labels", "fold_recipe", "out_of_fold",
           "rank_label_issues", "write_report"]
