"""Every setting of every stage: defaults, help, checks."""

from __future__ import annotations

import json

import pytest

from tfemotion.config import (AuditConfig, DataConfig, ExportConfig, FeatureConfig,
                              FinetuneConfig, ServingConfig, choose_schedule)


def test_data_config_rejects_bad_labels():
    with pytest.raises(ValueError, match="Received: labels="):
        DataConfig(labels=("a", "a"))
    assert json.loads(json.dumps(DataConfig(labels=("a", "b")).to_dict()))["labels"] == ["a", "b"]


def test_from_dict_rejects_unknown_settings_by_name():
    with pytest.raises(ValueError, match=r"Unknown FinetuneConfig settings \['epoch'\]"):
        FinetuneConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize("make, message", [
    (lambda: FinetuneConfig(epochs=0), "epochs must be a positive number"),
    (lambda: FinetuneConfig(warmup_ratio=1.0), r"warmup_ratio must be in \[0, 1\)"),
    (lambda: FeatureConfig(pooling="max"), "pooling must be one of"),
    (lambda: ExportConfig(name="a/b"), "name must be a plain folder name"),
    (lambda: ExportConfig(warmup_batch_sizes=(0,)), "warmup_batch_sizes must be positive"),
    (lambda: ExportConfig(long_texts="chunks"), "long_texts must be one of"),
    (lambda: ExportConfig(stride=-1), "stride must be >= 0. Received: stride=-1"),
    (lambda: ExportConfig(max_windows=0), "max_windows must be a positive number"),
    (lambda: ServingConfig(port=70000), r"port must be in 0..65535"),
    (lambda: DataConfig(separator=";;"), "separator must be one character"),
    (lambda: DataConfig(problem_type="both"), "problem_type must be one of"),
    (lambda: AuditConfig(folds=1), r"folds must be at least 2 .* Received: folds=1"),
    (lambda: AuditConfig(filter_by="loss"), "filter_by must be one of"),
])
def test_configs_name_the_bad_field_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_choose_schedule_keeps_given_values_and_chooses_by_width_otherwise():
    given = choose_schedule(FinetuneConfig(model="x", learning_rate=3e-5, warmup_ratio=0.2), 384)
    assert (given.learning_rate, given.warmup_ratio) == (3e-5, 0.2)
    assert "as given" in given.reason
    assert choose_schedule(FinetuneConfig(model="x"), 384).learning_rate == 2e-4
    assert choose_schedule(FinetuneConfig(model="x"), 768).learning_rate == 5e-5
    between = choose_schedule(FinetuneConfig(model="x"), 512 + 128).learning_rate
    assert 5e-5 < between < 1e-4  # log-log interpolation between the table's rows
    book = choose_schedule(FinetuneConfig(model="distilbert-base-uncased"), 768)
    assert (book.learning_rate, book.warmup_ratio) == (2e-5, 0.0)
    assert choose_schedule(FinetuneConfig(model="x", recipe="book-keras"), 384).learning_rate \
        == 5e-5


def test_configs_round_trip_through_json():
    for config in (DataConfig(labels=("a", "b")), FeatureConfig(max_tokens=None),
                   FinetuneConfig(learning_rate=1e-4), ExportConfig(version=3),
                   ServingConfig(rest_port=None), AuditConfig(folds=3)):
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_recipe_auto_chooses_by_texts_per_label_and_says_why():
    from tfemotion.config import choose_recipe

    limit = FinetuneConfig().contrastive_max_per_label
    recipe, reason = choose_recipe(FinetuneConfig(), 6 * limit, 6)
    assert recipe == "contrastive" and f"({limit:.1f} per label, at most {limit}" in reason
    assert choose_recipe(FinetuneConfig(), 6 * limit + 1, 6)[0] == "default"
    assert choose_recipe(FinetuneConfig(contrastive_max_per_label=5), 60, 6)[0] == "default"
    assert choose_recipe(FinetuneConfig(recipe="contrastive"), 10**6, 6)[0] == "contrastive"


def test_contrastive_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="label_template must hold '{}' once"):
        FinetuneConfig(label_template="no slot")
    with pytest.raises(ValueError, match="Received: head='svm'"):
        FinetuneConfig(head="svm")
    with pytest.raises(ValueError, match="holdout_share must be in"):
        FinetuneConfig(holdout_share=0.0)
    assert FinetuneConfig(label_template="None").label_template is None
