"""What the tests share: tiny checkpoints and data built offline, stand-ins, and checks.

Test modules import from here (``from support import ...``), never from each other; the
fixtures that build these once per session live in ``session_fixtures.py``. Everything is made
on the spot: models from a config and a ~150-token vocab saved with ``save_pretrained`` (one as
``model.safetensors`` only, with PyTorch weight names, like most new hub checkpoints),
tokenizers trained here with the ``tokenizers`` and ``sentencepiece`` packages, data sets of
synthetic texts whose label one keyword decides.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import shutil
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = ("sadness", "joy", "love", "anger", "fear", "surprise")

# region Tiny checkpoints and data sets

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


def write_sentence_transformers_config(folder: Path, mode: str = "mean",
                                       normalize: bool = True) -> Path:
    """``modules.json`` and ``1_Pooling/config.json`` as sentence-transformers writes them."""
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    flag = {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}[mode]
    flags = {f"pooling_mode_{m}": m == flag for m in ("cls_token", "mean_tokens", "max_tokens")}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, **flags, "pooling_mode_mean_sqrt_len_tokens": False}))
    return folder


def make_tiny_sentence_encoder(folder: Path, bert: Path) -> Path:
    """The tiny BERT as a sentence-transformers folder: mean pooling, then normalization."""
    shutil.copytree(bert, folder)
    return write_sentence_transformers_config(folder)


def copy_run(run: Path, target: Path) -> Path:
    """A copy of a run folder (model, record, metrics; not its checkpoints or logs) that a test
    may write into, leaving a shared session run as it is."""
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return target


def load_data(source, **settings):
    """``load_splits(DataConfig(source, **settings))``."""
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    return load_splits(DataConfig(source=str(source), **settings))


def write_run_record(run: Path, data_source: Path, finetune, label_names, max_length: int,
                     problem_type: str = "single_label") -> Path:
    """A run record as fine-tuning writes it, for run folders that tests assemble by hand."""
    from tfemotion.config import DataConfig, choose_schedule
    from tfemotion.runfolder import RunFolder, RunRecord
    from tfemotion.task import Task

    record = RunRecord(DataConfig(source=str(data_source)), finetune,
                       Task(tuple(label_names), problem_type), max_length,
                       choose_schedule(finetune, 32))
    return record.save(RunFolder(run))


def make_saved_classifier(folder: Path, checkpoint: Path, scale: float = 20.0) -> Path:
    """An untrained tiny classifier saved like RUN/model, its kernels scaled up so that its
    outputs differ from text to text (at initialisation they are almost all the same)."""
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    names = list(EMOTIONS)
    model = load_tf_model(TFAutoModelForSequenceClassification, str(checkpoint), num_labels=6,
                          id2label=dict(enumerate(names)),
                          label2id={n: i for i, n in enumerate(names)})
    for weight in model.weights:
        if "kernel" in weight.name:
            weight.assign(weight.numpy() * scale)
    model.save_pretrained(str(folder))
    load_tokenizer(str(checkpoint)).save_pretrained(str(folder))
    return folder


def two_label_rows(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """Texts that join two synthetic texts of different labels and carry both labels."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        (first, a), (second, b) = synthetic_rows(2, rng.randint(0, 10**6))
        if a != b:
            rows.append((f"{first} and {second}", sorted({a, b})))
    return rows


def write_multi_label_dataset(folder: Path, sizes=(240, 60, 60)) -> Path:
    """A train/validation/test folder of ``.jsonl`` texts that carry two labels each."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in zip(("train", "validation", "test"), sizes, (1, 2, 3)):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in
                    two_label_rows(n, seed)), encoding="utf-8")
    return folder


def read_history(run: Path) -> list[dict[str, str]]:
    """The rows of a run's history.csv."""
    with (Path(run) / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@contextlib.contextmanager
def reserved_ports(n: int) -> Iterator[list[int]]:
    """``n`` TCP ports of 127.0.0.1 held for the block, for servers that must be told their port
    before they start (a TF_CONFIG cluster, a notebook that starts its own server).

    Each port is bound with SO_REUSEADDR and never listened on: until a server listens there,
    connections are refused and no other program gets the port (binding port 0 never returns it;
    binding it without SO_REUSEADDR fails), and the server under test, which binds it with
    SO_REUSEADDR (gRPC, TensorFlow's cluster servers and Python's HTTPServer do), gets it: Linux
    lets any number of such sockets share a port while none of the others listens. A port
    picked, released and handed over later may be taken by anything in between.
    """
    sockets = [socket.socket() for _ in range(n)]
    try:
        for held in sockets:
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            held.bind(("127.0.0.1", 0))
        yield [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


# A deadline that only a hang reaches: a wait that fails here did not merely run slowly.
HANG_SECONDS = 120.0


def wait_until(condition: Callable[[], Any], timeout: float = HANG_SECONDS,
               interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns a true value, and return that value; fail the test
    when ``timeout`` seconds pass first (for conditions no event announces)."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout:.0f} s: {condition}")
        time.sleep(interval)


# endregion
# region Callbacks that break training on purpose


def stop_after_epoch(epoch: int):
    """A Keras callback that raises at the end of an epoch, like a machine that goes away."""
    import tf_keras

    class StopAfterEpoch(tf_keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index + 1 == epoch:
                raise KeyboardInterrupt(f"interrupted after epoch {epoch}")

    return StopAfterEpoch()


def poison_weights(epoch: int):
    """A Keras callback that sets the head's weights to NaN at the start of an epoch (1-based)."""
    import tf_keras

    class PoisonWeights(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            if index + 1 == epoch:
                for weight in self.model.classifier.weights:
                    weight.assign(np.full(weight.shape, np.nan, dtype=np.float32))

    return PoisonWeights()


def zero_classifier_at_end():
    """A Keras callback that zeroes the head after the last batch of the last epoch, so that
    epoch predicts one class and an earlier epoch must be restored."""
    import tf_keras

    class ZeroClassifierAtEnd(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self._epoch == self.params["epochs"] - 1 and batch + 1 == self.params["steps"]:
                for weight in self.model.classifier.weights:
                    weight.assign(np.zeros(weight.shape, dtype=np.float32))

    return ZeroClassifierAtEnd()


# endregion
# region Tokenizer checks

# Random texts each in-graph tokenizer is fuzzed with against the Hugging Face tokenizer.
FUZZ_TEXTS = 5_000


def random_texts(n: int, seed: int, words: list[str]) -> list[str]:
    """Random Unicode strings, weighted towards what breaks tokenizers.

    Pools: ASCII, accented Latin, combining marks, CJK/kana/hangul, emoji with ZWJ and
    variation selectors, whitespace and control characters, other scripts, any code point,
    vocabulary words, special tokens, and over-long words.
    """
    rng = random.Random(seed)
    ranges = {
        "ascii": [(0x20, 0x7E)], "latin": [(0xC0, 0x24F), (0x1E00, 0x1EFF)],
        "marks": [(0x300, 0x36F), (0x1AB0, 0x1AFF), (0x20D0, 0x20FF)],
        "cjk": [(0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
                (0x20000, 0x2A6DF), (0x3400, 0x4DBF), (0xF900, 0xFAFF)],
        "emoji": [(0x1F300, 0x1FAFF), (0x2600, 0x27BF), (0x200D, 0x200D), (0xFE0F, 0xFE0F)],
        "space": [(0x0, 0x20), (0x7F, 0xA0), (0x2000, 0x200F), (0x2028, 0x202F), (0x3000, 0x3000),
                  (0xFEFF, 0xFEFF), (0x1680, 0x1680), (0xFFF9, 0xFFFD), (0xAD, 0xAD)],
        "scripts": [(0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
                    (0x1D400, 0x1D7FF), (0x10000, 0x1018F), (0xE0000, 0xE007F)],
        "any": [(0x0, 0xD7FF), (0xE000, 0x10FFFF)],
    }
    pools = list(ranges) + ["word", "special", "long"]
    weights = [30, 8, 4, 8, 5, 8, 6, 8, 18, 3, 2]
    texts = []
    for _ in range(n):
        parts = []
        for pool in rng.choices(pools, weights, k=rng.randint(0, 30)):
            if pool == "word":
                parts.append(rng.choice(words) + rng.choice(["", " ", "s", "ing", "!"]))
            elif pool == "special":
                parts.append(rng.choice(["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]"]))
            elif pool == "long":
                parts.append(rng.choice("abé") * rng.randint(95, 105))
            else:
                low, high = rng.choice(ranges[pool])
                parts.append(chr(rng.randint(low, high)))
        texts.append("".join(parts))
    return texts


def mismatches(in_graph, hf_tokenizer, texts: list[str], max_length: int, batch: int = 256):
    """Texts whose ids (or padded width) differ from the Hugging Face tokenizer's."""
    import tensorflow as tf

    wrong = []
    for begin in range(0, len(texts), batch):
        chunk = texts[begin: begin + batch]
        expected = hf_tokenizer(chunk, truncation=True, max_length=max_length)["input_ids"]
        out = in_graph(tf.constant(chunk))
        ids, mask = out["input_ids"].numpy(), out["attention_mask"].numpy()
        assert ids.shape == (len(chunk), max(map(len, expected)))
        for i, want in enumerate(expected):
            if ids[i][: mask[i].sum()].tolist() != want:
                wrong.append((chunk[i][:80], want[:20], ids[i][:20].tolist()))
    return wrong


def trained_fast_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ["i feel happy today", "i am so sad", "what a surprise"] * 20
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    if kind == "byte-level-bpe":
        backend = Tokenizer(models.BPE(unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "unigram":  # SentencePiece-style unigram
        backend = Tokenizer(models.Unigram())
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=60, special_tokens=specials, unk_token="[UNK]")
    else:  # a word-level vocabulary: no in-graph tokenizer reproduces it
        backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(special_tokens=specials)
    backend.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


# endregion
# region A stand-in export for serving tests



# Small limits so that the serving limit tests stay fast.
LIMITS = dict(max_batch_size=8, max_text_chars=10_000, max_request_bytes=1 << 20)
FAKE_SIGNATURES = {"serving_default", "classify", "tokenize", "encoded", "encoded_int64"}
_FAKE_KEYWORDS = (("sad", "gloomy"), ("happy", "glad"), ("love", "adore"), ("angry", "mad"),
                  ("scared", "afraid"), ("surprised", "amazed"))
_BUCKETS = 4096
_FAKE_MAX_LENGTH = 32


def write_fake_export(folder: Path, warmup: bool = True, bad_warmup: bool = False) -> Path:
    """Save a stand-in export to ``folder``, with a warm-up file: a ``tf.Module`` with the
    export's signatures that hashes lower-cased words and scores the six emotions by keyword
    (each keyword adds 4 to its label's logit), with core ops only. Like a real export,
    ``tokenize`` pads to a fixed maximum length (32 here), so that split requests join."""
    import tensorflow as tf

    model = _fake_emotion_model(tf)
    tf.saved_model.save(model, str(folder), signatures={
        "serving_default": model.serve, "classify": model.classify, "tokenize": model.tokenize,
        "encoded": model.encoded, "encoded_int64": model.encoded_int64})
    if warmup:
        (folder / "assets.extra").mkdir()
        with tf.io.TFRecordWriter(str(folder / "assets.extra" / "tf_serving_warmup_requests")) as w:
            for record in _fake_warmup_records(tf, bad_warmup):
                w.write(record)
    return folder


def publish(template: Path, base: Path, version: int, name: str = "emotion") -> Path:
    """Copy a version into place the way the exporter does: temporary folder, then rename."""
    temporary = base / name / f".tmp-{version}"
    shutil.copytree(template, temporary)
    os.rename(temporary, base / name / str(version))
    return base / name / str(version)


def _fake_emotion_model(tf):
    class FakeEmotionModel(tf.Module):
        def __init__(self):
            super().__init__()
            weights = np.zeros((_BUCKETS, len(EMOTIONS)), np.float32)
            for k, words in enumerate(_FAKE_KEYWORDS):
                rows = tf.strings.to_hash_bucket_fast(list(words), _BUCKETS - 1).numpy() + 1
                weights[rows, k] = 4.0
            self.weights = tf.Variable(weights)
            self.labels = tf.constant(EMOTIONS)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize(self, text):
            words = tf.strings.split(tf.strings.lower(text))
            ids = tf.cast(tf.strings.to_hash_bucket_fast(words, _BUCKETS - 1) + 1, tf.int32)
            ids = ids[:, :_FAKE_MAX_LENGTH].to_tensor(0, shape=[None, _FAKE_MAX_LENGTH])
            return {"input_ids": ids, "attention_mask": tf.cast(ids > 0, tf.int32)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                      tf.TensorSpec([None, None], tf.int32,
                                                    name="attention_mask")])
        def encoded(self, input_ids, attention_mask):
            mask = tf.cast(attention_mask, tf.float32)[..., None]
            logits = tf.reduce_sum(tf.gather(self.weights, input_ids) * mask, axis=1)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="input_ids"),
                                      tf.TensorSpec([None, None], tf.int64,
                                                    name="attention_mask")])
        def encoded_int64(self, input_ids, attention_mask):
            return self.encoded(tf.cast(input_ids, tf.int32), tf.cast(attention_mask, tf.int32))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            probabilities = self.encoded(**self.tokenize(text))["probabilities"]
            label_id = tf.argmax(probabilities, axis=-1)
            return {"label": tf.gather(self.labels, label_id), "label_id": label_id,
                    "probabilities": probabilities}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            features = {"text": tf.io.FixedLenFeature([], tf.string, default_value="")}
            text = tf.io.parse_example(inputs, features)["text"]
            scores = self.encoded(**self.tokenize(text))["probabilities"]
            return {"classes": tf.tile(self.labels[None], [tf.shape(text)[0], 1]),
                    "scores": scores}

    return FakeEmotionModel()


def _fake_warmup_records(tf, bad: bool = False) -> list[bytes]:
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

    predict = predict_pb2.PredictRequest()
    predict.model_spec.signature_name = "no-such-signature" if bad else "serving_default"
    predict.inputs["text"].CopyFrom(tf.make_tensor_proto(["i am happy"]))
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = "classify"
    classify.input.example_list.examples.add().features.feature["text"].bytes_list.value.append(
        b"so sad")
    return [prediction_log_pb2.PredictionLog(predict_log={"request": predict}).SerializeToString(),
            prediction_log_pb2.PredictionLog(
                classify_log={"request": classify}).SerializeToString()]


# endregion


# region A stand-in export for bulk scoring


FAIL_MARK = "BOOM"  # a text holding it makes write_scoring_export's model fail its whole batch


def write_scoring_export(folder: Path, multi_label: bool = False) -> Path:
    """A stand-in export with a record, for bulk scoring: ``serving_default`` scores the six
    emotions by keyword as ``write_fake_export``'s model does (softmax, or sigmoid with
    ``predicted`` at 0.5 for ``multi_label``), and fails the whole batch when a text holds
    ``FAIL_MARK``, so that the text-by-text retry can be seen."""
    import tensorflow as tf

    from tfemotion.export.record import ExportRecord
    from tfemotion.task import MULTI_LABEL, SINGLE_LABEL, Task

    model = _fake_emotion_model(tf)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        bad = tf.reduce_any(tf.strings.regex_full_match(text, f".*{FAIL_MARK}.*"))
        with tf.control_dependencies([tf.debugging.Assert(tf.logical_not(bad), [text])]):
            logits = model.encoded(**model.tokenize(text))["logits"]
        if multi_label:
            probabilities = tf.sigmoid(logits - 2.0)
            return {"probabilities": probabilities, "predicted": probabilities >= 0.5}
        return {"probabilities": tf.nn.softmax(logits)}

    model.serve_scoring = serve
    tf.saved_model.save(model, str(folder), signatures={"serving_default": serve})
    task = Task(EMOTIONS, MULTI_LABEL if multi_label else SINGLE_LABEL)
    ExportRecord(task=task, max_length=_FAKE_MAX_LENGTH,
                 thresholds=[0.5] * len(EMOTIONS) if multi_label else None,
                 signatures=["serving_default"]).save(folder)
    return folder


# endregion
