"""gRPC client for a TensorFlow Serving model exported by ``tfemotion export``: the light client
(``tfemotion_client``, installed with tfemotion from ``client/``) with tfemotion's settings.

The client itself (channel, retries, Predict, Classify, metadata, status, errors) is
``tfemotion_client.ServingClient``: grpcio and protobuf only, no TensorFlow, so that a program
that only asks a server for labels imports neither TensorFlow nor NumPy. This module adds what
takes a :class:`~tfemotion.config.ServingConfig` (``ServingClient.from_config``, :func:`query`,
:func:`query_stream`) and re-exports the rest.

Example:
    >>> parse_server("localhost:8500")
    ('localhost', 8500)
    >>> with ServingClient(serving_address, version=1) as client:  # e.g. "127.0.0.1:8500"
    ...     client.predict(["i feel so happy today"])[0].version
    1
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, Sequence

import tfemotion_client.client as _light
from tfemotion_client.cli import format_prediction, query_header  # noqa: F401
from tfemotion_client.client import APIS, Prediction, ServingError  # noqa: F401
from tfemotion_client.messages import address, check_texts, parse_server, target  # noqa: F401

from tfemotion.config import ServingConfig

__all__ = ["APIS", "Prediction", "ServingClient", "ServingError", "format_prediction",
           "format_query", "parse_server", "query", "query_header", "query_stream",
           "server_address"]


class ServingClient(_light.ServingClient):
    """The light client's :class:`tfemotion_client.ServingClient` (same arguments), built from
    tfemotion's settings with :meth:`from_config`."""

    @classmethod
    def from_config(cls, config: ServingConfig, *, server: Optional[str] = None,
                    version: Optional[int] = None, label: Optional[str] = None,
                    **kwargs: Any) -> "ServingClient":
        """Build a client from a :class:`ServingConfig` (host, port, name, timeout, retries).

        Args:
            config: ServingConfig. Settings.
            server: str or None. ``HOST:PORT`` or a gRPC target (``dns:///name:8500``);
                default: the config's host and port.
            version: int or None. Version to ask for.
            label: str or None. Version label to ask for.
            **kwargs: Any. Other :class:`ServingClient` arguments.

        Returns:
            A connected client.

        Example:
            >>> ServingClient.from_config(ServingConfig(), label="stable")
            ServingClient('127.0.0.1:8500', model='emotion@stable')
        """
        return cls(server_address(config, server), name=config.name, version=version, label=label,
                   timeout=config.timeout, retries=config.retries,
                   retry_backoff=config.retry_backoff, **kwargs)


def server_address(config: ServingConfig, server: Optional[str] = None) -> str:
    """The gRPC address a client dials: ``server`` (``HOST:PORT`` or a gRPC target such as
    ``dns:///name:8500``) or the config's host and port.

    Example:
        >>> server_address(ServingConfig(), "localhost:9000"), server_address(ServingConfig())
        ('localhost:9000', '127.0.0.1:8500')
    """
    return target(server) if server else address(config.host, config.port)


def query(config: Optional[ServingConfig], texts: Sequence[str], *,
          server: Optional[str] = None, version: Optional[int] = None,
          label: Optional[str] = None, api: str = "predict") -> dict[str, Any]:
    """Classify texts on a running server and return one JSON-ready result (a Python API;
    ``tfemotion query`` streams with :func:`query_stream`).

    Args:
        config: ServingConfig or None. Model name, timeout, retries, retry_backoff, and the
            host and port when ``server`` is not given.
        texts: sequence of str. Texts to classify.
        server: str or None. ``HOST:PORT`` of the gRPC endpoint.
        version: int or None. Model version to ask for.
        label: str or None. Version label to ask for (``stable``, ``canary``).
        api: str. ``predict`` (Predict API, raw-text signature) or ``classify`` (Classify API).

    Returns:
        ``{"server", "model", "version", "label", "api", "predictions": [{"text", "label",
        "scores", "version"}]}``; ``version`` is the version that answered.

    Raises:
        ValueError: bad ``api``, ``server``, or both ``version`` and ``label``.
        ServingError: the server refused or could not be reached.

    Example:
        >>> result = query(ServingConfig(), ["i am so happy"], server=serving_address)
        >>> result["version"], result["predictions"][0]["text"]
        (1, 'i am so happy')
    """
    config = config or ServingConfig()
    texts = check_texts(texts)
    predictions = list(query_stream(config, texts, server=server, version=version, label=label,
                                    api=api))
    return {"server": server_address(config, server), "model": config.name,
            "version": predictions[0].version if predictions else None, "label": label,
            "api": api, "predictions": [p.to_dict() for p in predictions]}


def query_stream(config: Optional[ServingConfig], texts: Iterable[str], *,
                 server: Optional[str] = None, version: Optional[int] = None,
                 label: Optional[str] = None, api: str = "predict",
                 batch_size: int = 64) -> Iterator[Prediction]:
    """Classify an iterable of texts of any length on a server, one request per batch
    (``tfemotion_client.query_stream`` with the config's settings).

    Texts are read lazily and sent ``batch_size`` at a time (keep it within the server's
    batch cap: ``ServingConfig.max_batch_size``, ``serving/batching.config``); the predictions
    come back in order, one per text.

    Args:
        config, server, version, label, api: as in :func:`query`.
        texts: iterable of str.
        batch_size: int. Texts per request.

    Raises:
        ValueError: bad ``api`` or ``batch_size``.
        ServingError: the server refused or could not be reached.

    Example:
        >>> texts = ["so happy", "so sad", "so scared"]  # or read_texts("tweets.txt")
        >>> [p.text for p in query_stream(ServingConfig(), texts, server=serving_address,
        ...                               batch_size=2)]
        ['so happy', 'so sad', 'so scared']
    """
    config = config or ServingConfig()
    yield from _light.query_stream(
        texts, server=server_address(config, server), name=config.name, version=version,
        label=label, api=api, batch_size=batch_size, timeout=config.timeout,
        retries=config.retries, retry_backoff=config.retry_backoff)


def format_query(result: dict[str, Any], width: int = 60) -> str:
    """Render a :func:`query` result as a text table (``tfemotion query`` prints the same lines
    as they come: :func:`query_header`, then :func:`format_prediction` per text).

    Args:
        result: dict. The output of :func:`query`.
        width: int. Texts longer than this are shortened.

    Returns:
        A header line, then one line per text: label, its score, the text.

    Example:
        >>> print(format_query({"model": "emotion", "version": 2, "server": "h:1", "predictions": [
        ...     {"text": "so happy", "label": "joy", "scores": {"joy": 0.9, "sadness": 0.1}}]}))
        emotion version 2 at h:1
        joy       0.900  so happy
    """
    lines = [query_header(result["model"], result.get("version"), result["server"])]
    lines += [format_prediction(p, width) for p in result["predictions"]]
    return "\n".join(lines)
