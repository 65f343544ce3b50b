"""The model to fine-tune: a head for the task's labels, the task's loss, the recipe's optimizer."""

from __future__ import annotations

import pytest

from tfemotion.config import FinetuneConfig, choose_schedule
from tfemotion.task import MULTI_LABEL, Task
from tfemotion.training import build_classifier, compile_classifier, hidden_size


@pytest.mark.parametrize("problem_type, loss, head_type", [
    ("single_label", "SparseCategoricalCrossentropy", None),
    (MULTI_LABEL, "BinaryCrossentropy", "multi_label_classification")])
def test_the_task_decides_the_head_and_the_loss(tiny_bert_dir, problem_type, loss, head_type):
    task = Task(("neg", "pos", "mixed"), problem_type)
    model = build_classifier(str(tiny_bert_dir), task)
    assert model.config.id2label == {0: "neg", 1: "pos", 2: "mixed"}
    assert model.config.label2id == {"neg": 0, "pos": 1, "mixed": 2}
    assert model.config.problem_type == head_type
    config = FinetuneConfig(model=str(tiny_bert_dir))
    compile_classifier(model, choose_schedule(config, 32), config, 100, task)
    assert type(model.loss).__name__ == loss
    assert type(model.optimizer).__name__ == "AdamWeightDecay"  # the default recipe's AdamW


def test_the_book_keras_recipe_compiles_adam_at_a_constant_rate(tiny_bert_dir):
    task = Task(("a", "b"))
    model = build_classifier(str(tiny_bert_dir), task)
    config = FinetuneConfig(model=str(tiny_bert_dir), recipe="book-keras")
    compile_classifier(model, choose_schedule(config, 32), config, 100, task)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(5e-5)


def test_hidden_size_reads_every_family_s_name_for_it():
    from types import SimpleNamespace

    assert hidden_size(SimpleNamespace(hidden_size=384)) == 384
    assert hidden_size(SimpleNamespace(dim=768)) == 768  # DistilBERT
    assert hidden_size(SimpleNamespace(hidden_size=None)) is None
