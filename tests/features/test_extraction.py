"""Feature extraction: features equal to one text at a time, order, tracing, cache, precision."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import synthetic_rows

from tfemotion.config import FeatureConfig
from tfemotion.features import extraction as features_module
from tfemotion.features.extraction import _plan_batches, extract_features


TEXTS = [t for t, _ in synthetic_rows(30, seed=5)] + [
    "happy", "i feel so very sad and gloomy and not glad at all today with my friend this morning",
    "é ß 中文 😀 …", "a" * 40,
]


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    return load_tf_model(TFAutoModel, str(tiny_bert_dir)), load_tokenizer(str(tiny_bert_dir))


def _alone(model, tokenizer, text: str, pooling: str) -> np.ndarray:
    """Features of one text from an eager forward pass without any padding."""
    ids = tokenizer(text, truncation=True, max_length=64)["input_ids"]
    ids = np.array([ids], np.int32)
    hidden = model(input_ids=ids, attention_mask=np.ones_like(ids),
                   training=False).last_hidden_state.numpy()[0]
    return hidden[0] if pooling == "cls" else hidden.mean(axis=0)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("checkpoint", [
    "tiny_bert_dir", *(pytest.param(name, marks=pytest.mark.integration)  # the other families
                       for name in ("tiny_distilbert_safetensors_dir", "tiny_roberta_dir",
                                    "tiny_xlmr_dir"))])
def test_extract_features_padding_does_not_change_features(checkpoint, pooling, request):
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    folder = str(request.getfixturevalue(checkpoint))
    config = FeatureConfig(model=folder, pooling=pooling, batch_size=8, pad_to_multiple_of=8)
    got = extract_features(TEXTS, config=config, show_progress=False)
    model, tokenizer = load_tf_model(TFAutoModel, folder), load_tokenizer(folder)
    expected = np.stack([_alone(model, tokenizer, t, pooling) for t in TEXTS])
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_extract_features_keeps_input_order(bert):
    config = FeatureConfig(batch_size=3, max_tokens=40)
    forward = extract_features(TEXTS, bert, config, show_progress=False)
    permutation = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = extract_features([TEXTS[i] for i in permutation], bert, config, show_progress=False)
    np.testing.assert_allclose(shuffled, forward[permutation], atol=1e-5, rtol=0)


def test_extract_features_traces_once_for_all_batch_shapes(bert):
    model, tokenizer = bert
    config = FeatureConfig(batch_size=2, pad_to_multiple_of=1, pooling="mean")
    extract_features(TEXTS, bert, config, show_progress=False)
    extract_features(TEXTS[::-1][:7], bert, config.replace(batch_size=5), show_progress=False)
    widths = {len(ids) for ids in tokenizer(TEXTS, truncation=True)["input_ids"]}
    assert len(widths) > 5  # the batches really had many shapes
    assert features_module._forward_fn(model, "mean").experimental_get_tracing_count() == 1


def test_extract_features_dataset_dict_gives_one_array_per_split(bert):
    import datasets

    splits = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": TEXTS[:5], "label": [0] * 5}),
        "test": datasets.Dataset.from_dict({"text": TEXTS[5:8], "label": [1] * 3}),
    })
    got = extract_features(splits, bert, show_progress=False)
    assert {k: v.shape for k, v in got.items()} == {"train": (5, 32), "test": (3, 32)}


def test_extract_features_cache_hit_skips_the_model(tiny_bert_dir, tmp_path, monkeypatch,
                                                   fake_machine):
    fake_machine(cpu_flags=["avx512_bf16"])  # so that mixed_bfloat16 below is not refused
    config = FeatureConfig(model=str(tiny_bert_dir), batch_size=16)
    first = extract_features(TEXTS, config=config, cache_dir=tmp_path, show_progress=False)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    with np.load(files[0], allow_pickle=False) as stored:
        np.testing.assert_array_equal(stored["features"], first)

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran although the features were cached")

    monkeypatch.setattr(features_module, "_forward_fn", no_model)
    monkeypatch.setattr("tfemotion.checkpoints.load_tf_model", no_model)
    again = extract_features(TEXTS, config=config, cache_dir=tmp_path, show_progress=False)
    np.testing.assert_array_equal(again, first)
    changes = [(TEXTS[:-1], config), (TEXTS, config.replace(pooling="mean")),
               (TEXTS, config.replace(max_length=16)),
               (TEXTS, config.replace(mixed_precision="mixed_bfloat16"))]
    for changed_texts, changed_config in changes:
        with pytest.raises(AssertionError, match="the model ran"):
            extract_features(changed_texts, config=changed_config, cache_dir=tmp_path,
                             show_progress=False)


def test_extract_features_cache_misses_when_weights_change(tiny_bert_dir, tmp_path, monkeypatch):
    import shutil

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_bert_dir, checkpoint)
    config = FeatureConfig(model=str(checkpoint))
    extract_features(TEXTS[:4], config=config, cache_dir=tmp_path / "cache", show_progress=False)
    weights = checkpoint / "tf_model.h5"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    extract_features(TEXTS[:4], config=config, cache_dir=tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_bfloat16_features_are_float32_arrays_close_to_float32s(tiny_bert_dir, caplog,
                                                                fake_machine):
    from tfemotion import hardware

    fake_machine(cpu_flags=["avx512_bf16"])  # without the units TensorFlow emulates them
    config = FeatureConfig(model=str(tiny_bert_dir), batch_size=16)
    hardware._SUGGESTED.clear()
    with caplog.at_level("INFO", logger="tfemotion.hardware"):
        full = extract_features(TEXTS, config=config, cache_dir=None, show_progress=False)
        extract_features(TEXTS[:2], config=config, cache_dir=None, show_progress=False)
    hints = [r.getMessage() for r in caplog.records if "bfloat16 units" in r.getMessage()]
    assert len(hints) == 1 and "mixed_bfloat16" in hints[0]  # said once, never chosen
    half = extract_features(TEXTS, config=config.replace(mixed_precision="mixed_bfloat16"),
                            cache_dir=None, show_progress=False)
    assert half.dtype == np.float32 and half.shape == full.shape
    # bfloat16 keeps 8 bits of mantissa: close to float32's, but not equal to them
    scale = np.abs(full).max()
    assert 0 < np.abs(half - full).max() <= 0.05 * scale


@pytest.mark.parametrize("machine", [
    {"cpu_flags": ["avx2"]},  # a CPU without bfloat16 units
    {"gpus": [(7, 5)], "cpu_flags": ["avx512_bf16"]},  # a GPU without them does the work
])
def test_mixed_precision_features_need_the_hardware(tiny_bert_dir, fake_machine, machine):
    from tfemotion import hardware

    fake_machine(**machine)
    config = FeatureConfig(model=str(tiny_bert_dir), mixed_precision="mixed_bfloat16")
    with pytest.raises(ValueError, match="mixed_bfloat16 needs bfloat16 hardware"):
        extract_features(TEXTS[:2], config=config, cache_dir=None, show_progress=False)
    assert hardware.suggest_bfloat16("none", "--some-flag") is False
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        FeatureConfig(mixed_precision="bfloat16")


def test_plan_batches_respects_token_budget_and_covers_every_row():
    lengths = [5, 40, 12, 12, 7, 33, 3, 20]
    batches = _plan_batches(lengths, batch_size=4, max_tokens=48, multiple=8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        padded = -(-max(lengths[i] for i in batch) // 8) * 8
        assert len(batch) <= 4 and (len(batch) == 1 or len(batch) * padded <= 48)
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_extract_features_rejects_unknown_inputs(bert):
    with pytest.raises(TypeError, match="Received: data of type int"):
        extract_features(3, bert)
    with pytest.raises(TypeError, match="Received: encoder=42"):
        extract_features(["a"], 42)


def test_extract_features_does_not_keep_models_alive(tiny_bert_dir):
    import gc
    import weakref

    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    model = load_tf_model(TFAutoModel, str(tiny_bert_dir))
    extract_features(TEXTS[:3], (model, load_tokenizer(str(tiny_bert_dir))), show_progress=False)
    assert model in features_module._FORWARDS
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
