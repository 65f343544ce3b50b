"""Every setting of every stage, in one place.

Each stage of the data path has one frozen dataclass: its defaults follow chapter 2 of
*Natural Language Processing with Transformers* where the book has one, each field carries
its help text (the command line builds its flags from it), and ``__post_init__`` rejects bad
values with a message that names the field. This module imports nothing heavy.

Example:
    >>> FinetuneConfig().epochs is None  # chosen from the training set's size
    True
    >>> choose_schedule(FinetuneConfig(model="my/minilm"), hidden_size=384).learning_rate
    0.0002
    >>> FeatureConfig(pooling="max")
    Traceback (most recent call last):
    ...
    ValueError: pooling must be one of ('cls', 'mean'). Received: pooling='max'
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from tfemotion.task import MULTI_LABEL, SINGLE_LABEL

BOOK_DATASET = "dair-ai/emotion"
BOOK_CHECKPOINT = "distilbert-base-uncased"
# Fine-tuning learning rates: the book's Trainer run and its Keras variant.
BOOK_LEARNING_RATE = 2e-5
BOOK_KERAS_LEARNING_RATE = 5e-5
# Peak learning rate (AdamW, 10% warm-up, linear decay, batch 64, 2 epochs) by the encoder's
# hidden size, for checkpoints other than the book's: narrow encoders need larger steps. 384 was
# measured with MiniLM on the emotion data (1e-4: validation / test weighted F1 0.926 / 0.923;
# 2e-4: 0.928 / 0.931); 768 is the book's Keras rate for DistilBERT; the rest follow the
# lr ~ 1/width^2 trend of those two, kept within the usual ranges of BERT fine-tuning (at most
# 5e-4 for the smallest, 2e-5 for large models). Widths in between are interpolated on a log
# scale; outside the table the nearest end applies.
LEARNING_RATE_BY_WIDTH = ((128, 5e-4), (256, 3e-4), (384, 2e-4), (512, 1e-4), (768, 5e-5),
                          (1024, 2e-5))
# Share of the steps with a linear warm-up when the learning rate is chosen for the checkpoint.
AUTO_WARMUP_RATIO = 0.1
# Epochs when none are given: the book's 2, or more for a small training set, enough for the
# optimizer steps of the book's run (2 epochs of 16,000 tweets at batch 64 = 500 steps), at most
# 10. With 2 epochs, 6,000 multi-label texts (1-3 tweets joined, MiniLM) got only 188 steps and
# test micro F1 0.56; benchmarks/bench_multilabel.py --sweep measures the defaults against a
# sweep of learning rates x epochs.
BOOK_EPOCHS = 2
MIN_TRAINING_STEPS = 500
MAX_AUTO_EPOCHS = 10
# Label order of the hub's dair-ai/emotion ClassLabel (line i = id i).
EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")

POOLINGS = ("cls", "mean")
RECIPES = ("default", "book-keras", "contrastive", "auto")
# What `recipe="auto"` chooses between, and where: a training split of at most this many texts
# per label (on average) gets the contrastive recipe, a larger one fine-tuning. Measured with
# benchmarks/bench_fewshot.py (MiniLM, emotion data): see the README's "Few labels".
AUTO_CONTRASTIVE_MAX_PER_LABEL = 64
# The contrastive recipe's defaults (SetFit's, unless the benchmark found better).
# In-batch sampling's learning rate by texts per label, interpolated on a log scale between
# (clamped outside): measured with MiniLM on the emotion data, same draws, test accuracy with
# the default head: at 8 per label 5e-5 gave 50.8 (3 draws), 1e-4 48.7 on 2 of them (against
# 51.6); at 64 per label 5e-5 gave 69.0, 1e-4 73.2 (1 draw). SetFit's oversampling: 2e-5.
CONTRASTIVE_LEARNING_RATES = ((8, 5e-5), (64, 1e-4))
SETFIT_LEARNING_RATE = 2e-5
PAIR_SAMPLINGS = ("in_batch", "oversampling")
CONTRASTIVE_EPOCHS = 1
HEADS = ("logistic_regression", "dense")
SETFIT_TEMPLATE = "This sentence is {}"
# The weight of the label names' prototypes in the head (logits per unit of cosine) at 8 texts
# per label; it shrinks as 8 / (texts per label) with more, as a prior does against growing
# evidence. Measured on the emotion data with MiniLM (test accuracy, same draws): at 8 per label
# weights 5 / 10 / 20 gave 49.6 / 50.4 / 50.8 (3 draws), no prior 48.3; at 64 per label 20
# cost 1.2 points and 2.5 about nothing (1 draw).
LABEL_PRIOR = 20.0
LABEL_PRIOR_TEXTS = 8
STRATEGIES = ("auto", "default", "mirrored", "multi-worker", "tpu")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")
# Compute precisions of an export (variables, inputs and outputs stay as in float32).
EXPORT_PRECISIONS = ("float32", "bfloat16", "float16")
# Texts longer than the encoder's window: read in overlapping windows whose logits are pooled
# per text, or cut at max_length (the export's behaviour before windows).
LONG_TEXTS = ("windows", "truncate")
SPLITS = ("train", "validation", "test")
# One label per text, several, or told from the data.
PROBLEM_TYPES = ("auto", SINGLE_LABEL, MULTI_LABEL)


def _help(text: str, *, choices: Optional[tuple] = None, flags: tuple[str, ...] = (),
          **kwargs: Any) -> Any:
    """A dataclass field with the metadata the command line builds its flag from."""
    return field(metadata={"help": text, "choices": choices, "flags": flags}, **kwargs)


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}. Received: {name}={value!r}")


def _check_positive(name: str, value: Optional[float], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")


class _ConfigMixin:
    """JSON round trip shared by all configs."""

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))  # Path -> str

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build the config from a dict, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any):
        """Return a copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataConfig(_ConfigMixin):
    """Where the labelled texts come from and how to read them."""

    source: str = _help(
        "Hub dataset id, local folder with train/validation/test files, local file or URL "
        "(.txt 'text;label', .csv 'text,label', .jsonl with 'label', or a 'labels' list for "
        "multi-label data).",
        default=BOOK_DATASET,
        flags=("--data",),
    )
    labels: Optional[tuple[str, ...]] = _help(
        "Label names in id order. Default: labels.txt beside the data, else the emotion order "
        "when the label set is exactly the emotion one, else sorted.",
        default=None,
    )
    separator: str = _help("Separator between text and label in .txt files.", default=";")
    hub_config: Optional[str] = _help("Configuration name of a hub dataset.", default=None)
    problem_type: str = _help(
        "One label per text ('single_label') or several ('multi_label': a 'labels' list in "
        ".jsonl, labels joined by --label-separator in .csv/.txt, a Sequence(ClassLabel) column "
        "on the hub). 'auto' tells from the data: a 'labels' list, or a .csv/.txt label that "
        "holds the label separator (logged with its file and line).",
        default="auto", choices=PROBLEM_TYPES)
    label_separator: str = _help(
        "Separator between the labels of one text in .csv and .txt files (multi-label data; "
        "in .txt it must differ from --separator, in .csv quote the joined field).",
        default=",")
    allow_no_label: bool = _help(
        "Multi-label data: allow texts that carry no label (else such a text is an error).",
        default=False)

    def __post_init__(self) -> None:
        if not self.source or not str(self.source).strip():
            raise ValueError(f"source must name a dataset. Received: source={self.source!r}")
        if len(self.separator) != 1:
            raise ValueError(
                f"separator must be one character. Received: separator={self.separator!r}"
            )
        if len(self.label_separator) != 1:
            raise ValueError("label_separator must be one character. Received: "
                             f"label_separator={self.label_separator!r}")
        _check_choice("problem_type", self.problem_type, PROBLEM_TYPES)
        if self.labels is not None:
            labels = tuple(self.labels)
            if len(labels) < 2 or len(set(labels)) != len(labels) or not all(labels):
                raise ValueError(
                    f"labels must be at least two distinct non-empty names. Received: labels={labels!r}"
                )
            object.__setattr__(self, "labels", labels)


@dataclass(frozen=True)
class FeatureConfig(_ConfigMixin):
    """Transformer as a feature extractor, then a scikit-learn classifier (the book's baseline)."""

    model: str = _help("Checkpoint: hub id or local folder.", default=BOOK_CHECKPOINT)
    pooling: str = _help(
        "How a text's last hidden states become one vector: 'cls' (the book) or 'mean' "
        "(average over real tokens).",
        default="cls",
        choices=POOLINGS,
    )
    batch_size: int = _help(
        "Most texts per forward pass (texts of similar length are batched together).",
        default=256,
    )
    max_tokens: Optional[int] = _help(
        "Most padded tokens per forward pass: batches of short texts grow up to --batch-size, "
        "batches of long ones shrink ('none': no token limit). 1024-2048 was fastest on 2 CPU "
        "cores; raise it on a GPU.",
        default=2048,
    )
    pad_to_multiple_of: int = _help(
        "Round each batch's padded length up to a multiple of this. The forward function runs "
        "every shape without retracing, so on CPU rounding only adds padding (8: ~10% slower); "
        "use 8 on GPUs, whose kernels prefer lengths in multiples of 8.",
        default=1,
    )
    max_length: Optional[int] = _help(
        "Truncate texts to this many tokens. Default: the model's maximum length.", default=None
    )
    cache_dir: Optional[str] = _help(
        "Folder for cached features (.npz). Default: cache/ in the baseline's output folder.",
        default=None
    )
    mixed_precision: str = _help(
        "Compute the features in 'mixed_bfloat16' (TPUs, CPUs with bfloat16 units, NVIDIA GPUs "
        "of compute capability >= 8.0) or 'mixed_float16' (NVIDIA GPUs); features stay float32 "
        "arrays, equal to float32's within bfloat16's rounding (benchmarks/bench_features.py "
        "prints the difference and the classifier's accuracy for both). 'none': float32.",
        default="none", choices=MIXED_PRECISION)
    max_iter: int = _help("LogisticRegression max_iter (the book: 3000).", default=3000)
    umap: bool = _help("Also plot the UMAP projection of the train features (extra 'umap').",
                       default=False)

    def __post_init__(self) -> None:
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_positive("batch_size", self.batch_size)
        _check_positive("max_tokens", self.max_tokens, allow_none=True)
        _check_positive("pad_to_multiple_of", self.pad_to_multiple_of)
        _check_positive("max_length", self.max_length, allow_none=True)
        _check_positive("max_iter", self.max_iter)


@dataclass(frozen=True)
class FinetuneConfig(_ConfigMixin):
    """Fine-tuning a sequence classifier with Keras compile/fit."""

    model: str = _help("Checkpoint: hub id or local folder.", default=BOOK_CHECKPOINT)
    epochs: Optional[int] = _help(
        "Training epochs. Default: the book's 2, or more for a small training set: enough for "
        "500 optimizer steps (the book's 2 epochs of 16,000 texts at batch 64), at most 10.",
        default=None)
    learning_rate: Optional[float] = _help(
        "Peak learning rate, for the global batch. Default: chosen for the checkpoint: 2e-5 "
        "for distilbert-base-uncased (the book's Trainer run), 5e-5 with --recipe book-keras "
        "(the book's Keras code), else by the encoder's hidden size (2e-4 at 384, 5e-5 at 768); "
        "the contrastive recipe's by texts per label (5e-5 at 8, 1e-4 at 64; SetFit's "
        "oversampling: 2e-5).",
        default=None, flags=("--learning-rate", "--lr"))
    batch_size: int = _help(
        "Global batch size, split across replicas (the book: 64).", default=64
    )
    weight_decay: float = _help("AdamW weight decay (the book: 0.01).", default=0.01)
    warmup_ratio: Optional[float] = _help(
        "Share of the steps with a linear warm-up. Default: 0 with the book's recipes, else 0.1.",
        default=None)
    max_length: Optional[int] = _help(
        "Truncate texts to this many tokens. Default: the model's maximum length.", default=None
    )
    recipe: str = _help(
        "'default': fine-tuning with AdamW, linear decay, length-bucketed dynamic padding; "
        "'book-keras': the book's Keras recipe (Adam, 5e-5 unless --learning-rate is given, "
        "global padding); 'contrastive': SetFit's recipe for few labelled texts (the encoder "
        "tuned on pairs of texts, then a head fitted on its embeddings); 'auto': 'contrastive' "
        "for a training split of at most --contrastive-max-per-label texts per label, else "
        "'default'.",
        default="auto",
        choices=RECIPES,
    )
    mixed_precision: str = _help(
        "'none'; 'mixed_float16' (NVIDIA GPUs, with loss scaling); 'mixed_bfloat16' (TPUs, "
        "NVIDIA GPUs of compute capability >= 8.0, CPUs with bfloat16 units, where "
        "benchmarks/bench_finetune.py --compare-precision measures what it gains).",
        default="none", choices=MIXED_PRECISION,
    )
    xla: bool = _help("Compile the train step with XLA (jit_compile).", default=False)
    strategy: str = _help(
        "tf.distribute strategy: 'auto' picks TPU/multi-worker/mirrored/default from the "
        "hardware and TF_CONFIG.",
        default="auto",
        choices=STRATEGIES,
    )
    seed: int = _help("Random seed for shuffling and initialisation.", default=42)
    resume: bool = _help("Continue an interrupted run from its last completed epoch.",
                         default=False)
    error_examples: int = _help("Highest- and lowest-loss examples to keep.", default=10)
    # The contrastive recipe (few labelled texts), and data without a validation split
    pair_sampling: str = _help(
        "Contrastive recipe: 'in_batch': every pair of each step's --texts-per-step texts, "
        "positives and negatives weighing half the loss each (many more pairs for the same "
        "work); 'oversampling': SetFit's (each pair of texts once, positives repeated to as "
        "many as the negatives, --pair-batch-size pairs a step, at most --max-pairs).",
        default="in_batch", choices=PAIR_SAMPLINGS)
    texts_per_step: int = _help(
        "Contrastive recipe, in-batch sampling: texts per optimizer step.", default=32)
    contrastive_steps: Optional[int] = _help(
        "Contrastive recipe, in-batch sampling: optimizer steps per epoch. Default: each "
        "training text in 32 steps, at most 200 steps.", default=None)
    pair_batch_size: int = _help(
        "Contrastive recipe, oversampling: pairs of texts per optimizer step (SetFit: 16).",
        default=16)
    max_pairs: Optional[int] = _help(
        "Contrastive recipe, oversampling: most pairs per epoch. Default: 40 per training text "
        "(SetFit's paper: 20 positive and 20 negative pairs per text), which is SetFit's own "
        "count at 8 texts per label and bounds the time at 64 and more.", default=None)
    head: str = _help(
        "Contrastive recipe: the head fitted on the tuned encoder's embeddings: "
        "'logistic_regression' (SetFit's; C chosen by cross-validation on the training "
        "embeddings) or 'dense' (a Keras dense layer trained on them).",
        default="logistic_regression", choices=HEADS)
    label_template: Optional[str] = _help(
        "Contrastive recipe: add --template-examples texts per label made from this template "
        "and the label's name (SetFit's get_templated_dataset), when every label name is a "
        "word; 'none': no such texts.", default=SETFIT_TEMPLATE)
    template_examples: int = _help(
        "Contrastive recipe: texts per label made from --label-template (0: none).",
        default=2)
    label_prior: float = _help(
        "Contrastive recipe, single-label data with template texts: add to the head's logits "
        "this weight times the cosine between a text and its label's template text, both "
        "through the tuned encoder, which carries what the label's name means; the weight is "
        "for 8 texts per label and shrinks as 8 / (texts per label) above (0: the head alone).",
        default=LABEL_PRIOR)
    contrastive_max_per_label: int = _help(
        "--recipe auto chooses 'contrastive' when the training split holds at most this many "
        "texts per label on average, else 'default' (fine-tuning).",
        default=AUTO_CONTRASTIVE_MAX_PER_LABEL)
    holdout_share: float = _help(
        "Data without a validation split: the share of the training split fine-tuning holds out "
        "to choose its best epoch (and a multi-label run's thresholds), stratified by label. "
        "The contrastive recipe needs none: it chooses its head's C by cross-validation.",
        default=0.1)
    checkpoint_steps: int = _help(
        "Contrastive recipe: save the tuned encoder every this many steps (--resume continues "
        "from the last one).", default=50)
    # Calibration (tfemotion.training.calibrate)
    calibrate: bool = _help(
        "After training, fit a temperature (multi-label: one per label) on the validation split "
        "(or the held-out share) so that the probabilities of the export, predict and evaluation "
        "are calibrated; labels of a single-label model do not change. --no-calibrate: raw "
        "probabilities.", default=True)

    def __post_init__(self) -> None:
        _check_positive("epochs", self.epochs, allow_none=True)
        _check_positive("learning_rate", self.learning_rate, allow_none=True)
        _check_positive("batch_size", self.batch_size)
        _check_positive("max_length", self.max_length, allow_none=True)
        _check_positive("error_examples", self.error_examples)
        if self.weight_decay < 0:
            raise ValueError(
                f"weight_decay must be >= 0. Received: weight_decay={self.weight_decay!r}"
            )
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(
                f"warmup_ratio must be in [0, 1). Received: warmup_ratio={self.warmup_ratio!r}"
            )
        _check_choice("recipe", self.recipe, RECIPES)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("head", self.head, HEADS)
        _check_choice("pair_sampling", self.pair_sampling, PAIR_SAMPLINGS)
        for name in ("pair_batch_size", "contrastive_max_per_label", "checkpoint_steps"):
            _check_positive(name, getattr(self, name))
        for name in ("max_pairs", "contrastive_steps"):
            _check_positive(name, getattr(self, name), allow_none=True)
        if self.texts_per_step < 2:
            raise ValueError("texts_per_step must be at least 2 (a pair). "
                             f"Received: texts_per_step={self.texts_per_step!r}")
        if self.label_prior < 0:
            raise ValueError("label_prior must be >= 0. "
                             f"Received: label_prior={self.label_prior!r}")
        if self.template_examples < 0:
            raise ValueError("template_examples must be >= 0. "
                             f"Received: template_examples={self.template_examples!r}")
        if self.label_template is not None and self.label_template.strip().lower() == "none":
            object.__setattr__(self, "label_template", None)  # the command line's 'none'
        if self.label_template is not None and self.label_template.count("{}") != 1:
            raise ValueError("label_template must hold '{}' once, where the label's name goes. "
                             f"Received: label_template={self.label_template!r}")
        if not 0 < self.holdout_share < 1:
            raise ValueError(f"holdout_share must be in (0, 1). "
                             f"Received: holdout_share={self.holdout_share!r}")


@dataclass(frozen=True)
class Schedule(_ConfigMixin):
    """The learning rate, warm-up and epochs a fine-tuning run uses, and why they were chosen."""

    learning_rate: float
    warmup_ratio: float
    reason: str
    epochs: int = BOOK_EPOCHS


def choose_schedule(config: FinetuneConfig, hidden_size: Optional[int] = None,
                    steps_per_epoch: Optional[int] = None) -> Schedule:
    """Resolve the learning rate, warm-up and epochs of ``config`` for its checkpoint and data.

    Values given in ``config`` are kept. Otherwise: the book's recipes keep the book's values
    (``recipe="book-keras"``: Adam 5e-5; the hub's ``distilbert-base-uncased``: 2e-5, no
    warm-up); any other checkpoint gets the rate of ``LEARNING_RATE_BY_WIDTH`` for its hidden
    size with a 10% warm-up, since the book's 2e-5 leaves narrow encoders far from converged
    in two epochs (MiniLM, hidden size 384: weighted F1 0.73 instead of 0.93).
    ``LEARNING_RATE_BY_WIDTH`` says where the rates come from. The epochs are the book's 2, or
    as many as ``MIN_TRAINING_STEPS`` take at ``steps_per_epoch`` (at most ``MAX_AUTO_EPOCHS``).

    Args:
        config: FinetuneConfig. Uses ``model``, ``recipe``, ``learning_rate``, ``warmup_ratio``,
            ``epochs``.
        hidden_size: int, optional. The encoder's width (``hidden_size``; DistilBERT's ``dim``).
            Without it, a checkpoint other than the book's gets the 768-wide rate.
        steps_per_epoch: int, optional. Optimizer steps in one epoch of the training set.
            Without it, epochs not given are the book's 2.

    Returns:
        A ``Schedule`` with the values and a one-line reason.

    Example:
        >>> choose_schedule(FinetuneConfig()).learning_rate
        2e-05
        >>> s = choose_schedule(FinetuneConfig(model="path/to/bert-mini"), hidden_size=256)
        >>> s.learning_rate, s.warmup_ratio, s.epochs
        (0.0003, 0.1, 2)
        >>> choose_schedule(FinetuneConfig(learning_rate=5e-5, model="x"), 384, 250).reason
        'learning rate 5e-05 as given; warm-up 10% of the steps; 2 epochs of 250 steps'
        >>> choose_schedule(FinetuneConfig(model="x"), 384, steps_per_epoch=94).epochs
        6
    """
    book_rate = {"book-keras": BOOK_KERAS_LEARNING_RATE}.get(config.recipe)
    if book_rate is None and _is_book_checkpoint(config.model):
        book_rate = BOOK_LEARNING_RATE
    if book_rate is not None:
        rate, source = book_rate, ("from the book's Keras recipe" if config.recipe == "book-keras"
                                   else f"from the book's recipe for {BOOK_CHECKPOINT}")
        warmup = 0.0
    else:
        width = int(hidden_size) if hidden_size else 768
        rate = _rate_for_width(width)
        source = f"chosen for the encoder's hidden size {width}" + ("" if hidden_size else
                                                                     " (assumed)")
        warmup = AUTO_WARMUP_RATIO
    if config.learning_rate is not None:
        rate, source = config.learning_rate, "as given"
    warmup_source = ""
    if config.warmup_ratio is not None:
        warmup, warmup_source = config.warmup_ratio, " as given"
    epochs, epochs_reason = _epochs(config.epochs, steps_per_epoch)
    reason = (f"learning rate {rate:g} {source}; warm-up {warmup:.0%} of the steps"
              f"{warmup_source}; {epochs_reason}")
    return Schedule(learning_rate=float(rate), warmup_ratio=float(warmup), reason=reason,
                    epochs=epochs)


def choose_recipe(config: FinetuneConfig, train_examples: int, num_labels: int) -> tuple[str, str]:
    """The recipe a run uses and why: the one given, or for ``recipe="auto"`` the one for the
    training split's size (``contrastive`` up to ``config.contrastive_max_per_label`` texts per
    label on average, ``default`` fine-tuning above).

    Example:
        >>> choose_recipe(FinetuneConfig(), 48, 6)[0], choose_recipe(FinetuneConfig(), 16000, 6)[0]
        ('contrastive', 'default')
        >>> choose_recipe(FinetuneConfig(recipe="book-keras"), 48, 6)
        ('book-keras', "recipe 'book-keras' as given")
    """
    if config.recipe != "auto":
        return config.recipe, f"recipe {config.recipe!r} as given"
    per_label = train_examples / max(num_labels, 1)
    limit = config.contrastive_max_per_label
    size = (f"the training split has {train_examples} texts for {num_labels} labels "
            f"({per_label:.1f} per label")
    if per_label <= limit:
        return "contrastive", (f"recipe 'contrastive' (few labels): {size}, at most {limit}: "
                               "SetFit's recipe learns more from few texts than fine-tuning)")
    return "default", f"recipe 'default' (fine-tuning): {size}, more than {limit})"


def choose_contrastive_schedule(config: FinetuneConfig,
                                texts_per_label: float = 8.0) -> Schedule:
    """The learning rate, warm-up and epochs of the contrastive recipe's first phase.

    Values given in ``config`` are kept; otherwise for in-batch sampling the rate of
    ``CONTRASTIVE_LEARNING_RATES`` at ``texts_per_label`` (SetFit's 2e-5 for its oversampling),
    with a 10% warm-up, for ``CONTRASTIVE_EPOCHS`` epochs over the pairs.

    Example:
        >>> choose_contrastive_schedule(FinetuneConfig(), 64).learning_rate
        0.0001
        >>> choose_contrastive_schedule(FinetuneConfig(), 16).learning_rate
        6.3e-05
        >>> schedule = choose_contrastive_schedule(FinetuneConfig(recipe="contrastive"))
        >>> schedule.learning_rate, schedule.warmup_ratio, schedule.epochs
        (5e-05, 0.1, 1)
        >>> schedule.reason.split("; ")[-1]
        '1 epoch over the pairs'
        >>> choose_contrastive_schedule(FinetuneConfig(pair_sampling="oversampling")).learning_rate
        2e-05
    """
    if config.pair_sampling == "oversampling":
        rate, source = SETFIT_LEARNING_RATE, "(SetFit's)"
    else:
        rate = _log_interpolated(CONTRASTIVE_LEARNING_RATES, texts_per_label)
        source = f"(the contrastive recipe's at {texts_per_label:.0f} texts per label)"
    if config.learning_rate is not None:
        rate, source = config.learning_rate, "as given"
    warmup, warmup_source = AUTO_WARMUP_RATIO, ""
    if config.warmup_ratio is not None:
        warmup, warmup_source = config.warmup_ratio, " as given"
    epochs = config.epochs or CONTRASTIVE_EPOCHS
    epochs_reason = (f"{epochs} epoch{'s' if epochs > 1 else ''} over the pairs"
                     + (" as given" if config.epochs else ""))
    return Schedule(learning_rate=float(rate), warmup_ratio=float(warmup),
                    reason=(f"learning rate {rate:g} {source}; warm-up {warmup:.0%} of the steps"
                            f"{warmup_source}; {epochs_reason}"), epochs=epochs)


def _log_interpolated(table: tuple, x: float) -> float:
    """``table``'s value at ``x``, interpolated on a log-log scale, clamped, 2 digits.

    Example:
        >>> [_log_interpolated(((8, 5e-5), (64, 1e-4)), x) for x in (4, 32, 100)]
        [5e-05, 7.9e-05, 0.0001]
    """
    import math

    if x <= table[0][0]:
        return table[0][1]
    if x >= table[-1][0]:
        return table[-1][1]
    for (x0, y0), (x1, y1) in zip(table, table[1:]):
        if x0 <= x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return float(f"{math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0))):.2g}")
    raise AssertionError("unreachable: the table covers x")


def _epochs(given: Optional[int], steps_per_epoch: Optional[int]) -> tuple[int, str]:
    """The epochs of a run and why.

    Example:
        >>> _epochs(None, 250), _epochs(None, 94)[0], _epochs(None, 3)[0], _epochs(4, 94)[1]
        ((2, '2 epochs of 250 steps'), 6, 10, '4 epochs as given')
    """
    if given is not None:
        return given, f"{given} epochs as given"
    if not steps_per_epoch:
        return BOOK_EPOCHS, f"{BOOK_EPOCHS} epochs"
    needed = -(-MIN_TRAINING_STEPS // steps_per_epoch)
    epochs = min(max(BOOK_EPOCHS, needed), MAX_AUTO_EPOCHS)
    if epochs == BOOK_EPOCHS:
        return epochs, f"{epochs} epochs of {steps_per_epoch} steps"
    return epochs, (f"{epochs} epochs of {steps_per_epoch} steps (a small training set gets "
                    f"more epochs, toward {MIN_TRAINING_STEPS} steps, at most "
                    f"{MAX_AUTO_EPOCHS})")


def _is_book_checkpoint(model: str) -> bool:
    """The book's checkpoint, by its short or full hub id or a folder of that name.

    Example:
        >>> [_is_book_checkpoint(m) for m in ("distilbert-base-uncased",
        ...  "distilbert/distilbert-base-uncased", "models/distilbert-base-uncased/", "bert")]
        [True, True, True, False]
    """
    return str(model).rstrip("/\\").replace("\\", "/").split("/")[-1] == BOOK_CHECKPOINT


def _rate_for_width(width: int) -> float:
    """``LEARNING_RATE_BY_WIDTH`` at ``width``, interpolated on a log-log scale, 2 digits."""
    import math

    table = LEARNING_RATE_BY_WIDTH
    if width <= table[0][0]:
        return table[0][1]
    if width >= table[-1][0]:
        return table[-1][1]
    for (w0, r0), (w1, r1) in zip(table, table[1:]):
        if w0 <= width <= w1:
            t = (math.log(width) - math.log(w0)) / (math.log(w1) - math.log(w0))
            rate = math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
            return float(f"{rate:.2g}")
    raise AssertionError("unreachable: the table covers every width")


@dataclass(frozen=True)
class ExportConfig(_ConfigMixin):
    """SavedModel export for TensorFlow Serving."""

    base_path: str = _help("TF Serving model base path; the export goes to BASE/NAME/VERSION.",
                           default="serving/models")
    name: str = _help("Model name under the base path.", default="emotion")
    version: Optional[int] = _help("Version number. Default: the next free integer.",
                                   default=None)
    max_length: Optional[int] = _help(
        "Truncate texts to this many tokens. Default: the run's maximum length (exporting a "
        "run), else the model's.", default=None
    )
    verify: bool = _help("Verify the export in a fresh process before publishing it.",
                         default=True)
    length_group_size: int = _help(
        "The raw-text signatures run the model on groups of this many texts of similar length, "
        "each group padded to its own longest text: on CPUs a batch of short texts then pays "
        "little for its longest one (12 was fastest on 2 cores with serving/session.config: "
        "at batch 32, ~480 texts/s against ~395 with 16 and ~285 with 32). 0 runs the whole "
        "batch at once, padded to its longest text: the choice for GPUs, which prefer one large "
        "product.", default=12)
    precision: str = _help(
        "Compute precision of the exported model: 'float32'; 'bfloat16' (TPUs, NVIDIA GPUs of "
        "compute capability >= 8.0, CPUs with bfloat16 units, where it may or may not be faster: "
        "measure with benchmarks/bench_serving.py); 'float16' (NVIDIA GPUs). Inputs and outputs "
        "keep their dtypes (scores stay DT_FLOAT); verification compares with the float32 model.",
        default="float32", choices=EXPORT_PRECISIONS)
    warmup_batch_sizes: tuple[int, ...] = _help(
        "Batch sizes of the warm-up requests TF Serving replays before a version takes traffic: "
        "1 and the allowed_batch_sizes of serving/batching.config, so that every batch shape "
        "the server will run is set up in advance.",
        default=(1, 8, 16, 32, 64, 128))
    # Long texts (issue 27 section 2)
    long_texts: str = _help(
        "Texts longer than max_length: 'windows' reads them to the end in windows of max_length "
        "tokens overlapping by --stride (Hugging Face's return_overflowing_tokens), runs all "
        "windows of a batch through the encoder together and pools each text's logits (mean; "
        "max for multi-label), and serving_default says how many windows each text took; "
        "'truncate' cuts them at max_length, as exports did before.",
        default="windows", choices=LONG_TEXTS)
    stride: Optional[int] = _help(
        "Tokens consecutive windows share. Default: max_length // 8 (64 at 512), which keeps a "
        "1,000-token text at 3 windows of which the last is short.", default=None)
    max_windows: int = _help(
        "Most windows one run of the graph may take (a request, or a batch TF Serving merged "
        "from requests); past it the request fails with INVALID_ARGUMENT. 2,048 holds a batch "
        "of 128 texts of 10,000 characters of ordinary text.", default=2048)

    def __post_init__(self) -> None:
        _check_choice("long_texts", self.long_texts, LONG_TEXTS)
        if self.stride is not None and self.stride < 0:
            raise ValueError(f"stride must be >= 0. Received: stride={self.stride!r}")
        _check_positive("max_windows", self.max_windows)
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a plain folder name. Received: name={self.name!r}")
        _check_positive("version", self.version, allow_none=True)
        _check_positive("max_length", self.max_length, allow_none=True)
        _check_choice("precision", self.precision, EXPORT_PRECISIONS)
        if self.length_group_size < 0:
            raise ValueError("length_group_size must be >= 0 (0: no grouping). "
                             f"Received: length_group_size={self.length_group_size!r}")
        sizes = tuple(int(size) for size in self.warmup_batch_sizes)
        if not sizes or any(size < 1 for size in sizes):
            raise ValueError("warmup_batch_sizes must be positive batch sizes. "
                             f"Received: warmup_batch_sizes={self.warmup_batch_sizes!r}")
        object.__setattr__(self, "warmup_batch_sizes", sizes)


@dataclass(frozen=True)
class ServingConfig(_ConfigMixin):
    """Development gRPC server and client settings (production serving is TF Serving)."""

    host: str = _help("Address to bind (server) or to reach (client).", default="127.0.0.1")
    port: int = _help("gRPC port (TF Serving's default: 8500); 0 lets the server pick a free one.",
                      default=8500)
    rest_port: Optional[int] = _help(
        "REST port of the development server (TF Serving's default: 8501); 0 picks a free one, "
        "'none' serves gRPC only.", default=8501)
    enable_batching: bool = _help(
        "Batch concurrent requests as TF Serving's --enable_batching does (development server).",
        default=False)
    batching_parameters_file: Optional[str] = _help(
        "TF Serving batching parameters (text BatchingParameters), e.g. serving/batching.config. "
        "Default with --enable-batching: TF Serving's defaults.", default=None)
    name: str = _help("Model name.", default="emotion")
    max_batch_size: int = _help(
        "Largest batch a request may carry (serving/batching.config uses the same cap).",
        default=128,
    )
    max_text_chars: int = _help("Longest text a request may carry, in characters.",
                                default=10_000)
    max_request_bytes: int = _help("Largest request message, in bytes.", default=4 * 1024 * 1024)
    workers: Optional[int] = _help(
        "Requests handled at the same time (server threads). Default: 8, and with batching as "
        "many as fill a batch on every batch thread and the next one (execution batch size x "
        "(num_batch_threads + 1)), so that batches can fill.", default=None)
    max_concurrent_requests: Optional[int] = _help(
        "Requests the server holds at once, running or waiting; past it gRPC answers "
        "RESOURCE_EXHAUSTED and REST 429 (each may carry max_request_bytes: this bounds the "
        "memory). Default: the workers plus what the batch queue can hold (max_enqueued_batches "
        "batches), at least 256 (about 1 GB of requests at the byte cap) and 4 x the workers.",
        default=None)
    poll_interval: float = _help(
        "Seconds between two looks at the base path for new versions (and at the model config).",
        default=1.0,
    )
    model_config_file: Optional[str] = _help(
        "TF Serving models.config (text ModelServerConfig) with version policies and labels. "
        "Default: serve the highest version of every model under the base path.",
        default=None, flags=("--model-config",),
    )
    session_config_file: Optional[str] = _help(
        "Text TensorFlow ConfigProto for the sessions that run the models, as TF Serving's "
        "--tensorflow_session_config_file (serving/session.config: the one shipped). Default: "
        "TensorFlow's defaults.", default=None, flags=("--session-config",),
    )
    timeout: float = _help("Client deadline per call, in seconds.", default=10.0)
    retries: int = _help("Client retries on UNAVAILABLE, with exponential backoff.", default=3)
    retry_backoff: float = _help("Client wait before the first retry, in seconds; doubles "
                                 "after each one.", default=0.2)

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be in 0..65535. Received: port={self.port!r}")
        if self.rest_port is not None and not 0 <= self.rest_port < 65536:
            raise ValueError("rest_port must be in 0..65535 (or None: no REST). "
                             f"Received: rest_port={self.rest_port!r}")
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a plain model name. Received: name={self.name!r}")
        for name in ("max_batch_size", "max_text_chars", "max_request_bytes",
                     "poll_interval", "timeout", "retry_backoff"):
            _check_positive(name, getattr(self, name))
        for name in ("workers", "max_concurrent_requests"):
            _check_positive(name, getattr(self, name), allow_none=True)
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0. Received: retries={self.retries!r}")


SCORING_INPUT_FORMATS = ("auto", "text", "jsonl", "csv", "parquet")
SCORING_OUTPUT_FORMATS = ("jsonl", "csv", "parquet")


@dataclass(frozen=True)
class ScoringConfig(_ConfigMixin):
    """Bulk scoring of a corpus with an export on Apache Beam (``tfemotion score``)."""

    input_format: str = _help(
        "Format of the inputs: text (one text per line), jsonl, csv (with a header) or parquet; "
        "auto tells it from each file's extension (.txt, .jsonl/.ndjson/.json, .csv, .parquet, "
        "optionally followed by .gz, .bz2...).", default="auto", choices=SCORING_INPUT_FORMATS)
    text_field: str = _help("The text's field (JSONL), column (CSV with a header, Parquet).",
                            default="text")
    id_field: str = _help("The id's field or column, passed through to the output when present.",
                          default="id")
    output_format: str = _help("Format of the scores and of the dead-letter records.",
                               default="jsonl", choices=SCORING_OUTPUT_FORMATS)
    min_batch_size: int = _help("Smallest batch of texts a worker scores at once (Beam's "
                                "BatchElements starts here and grows).", default=1)
    max_batch_size: int = _help("Largest batch of texts a worker scores at once.", default=64)
    max_text_chars: int = _help(
        "Longest text scored, in characters (the development server's default request cap); a "
        "longer one goes to the dead-letter output.", default=10_000)
    piece_mb: Optional[float] = _help(
        "Megabytes of a text or JSONL file one worker reads at once. Default: four pieces per "
        "local worker, between 1 and 64 MB.", default=None)

    def __post_init__(self) -> None:
        _check_choice("input_format", self.input_format, SCORING_INPUT_FORMATS)
        _check_choice("output_format", self.output_format, SCORING_OUTPUT_FORMATS)
        for name in ("min_batch_size", "max_batch_size", "max_text_chars"):
            _check_positive(name, getattr(self, name))
        _check_positive("piece_mb", self.piece_mb, allow_none=True)
        if self.min_batch_size > self.max_batch_size:
            raise ValueError("min_batch_size must be at most max_batch_size. Received: "
                             f"min_batch_size={self.min_batch_size!r}, "
                             f"max_batch_size={self.max_batch_size!r}")
        if not self.text_field:
            raise ValueError("text_field must name a field. Received: text_field=''")


# region The label audit (issue 28)

# cleanlab's ways of counting a text as a label issue (cleanlab.filter.find_label_issues).
AUDIT_FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                 "predicted_neq_given")


@dataclass(frozen=True)
class AuditConfig(_ConfigMixin):
    """The label audit: K-fold out-of-fold probabilities, then confident learning."""

    folds: int = _help(
        "Folds K: K trainings, each on (K-1)/K of the training texts with the run's recipe, "
        "give every training text a probability from a model that never saw it. At least 2, "
        "at most the texts of the rarest label (single-label data).", default=5)
    fold_seed: int = _help("Which texts go to which fold (stratified by label).", default=42)
    filter_by: str = _help(
        "cleanlab's rule for a label issue: 'prune_by_noise_rate' (cleanlab's default: as many "
        "texts per given x suggested label pair as confident learning estimates are wrong "
        "there, the least likely first), 'prune_by_class', 'both', 'confident_learning' (the "
        "off-diagonal of the confident joint), 'predicted_neq_given' (argmax differs).",
        default="prune_by_noise_rate", choices=AUDIT_FILTERS)

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("folds must be at least 2 (each text is predicted by a model "
                             f"trained on the other folds). Received: folds={self.folds!r}")
        _check_choice("filter_by", self.filter_by, AUDIT_FILTERS)


# endregion
