"""Serving: a gRPC client for TensorFlow Serving, and a development server with its semantics.

Split as TensorFlow Serving splits its own (``model_servers/``, ``servables/``, ``batching/``):

- ``apis``: TF Serving's protos and stubs for the server (``tensorflow-serving-api``, imported on
  first use);
- ``client``: ``ServingClient``, ``query``, ``query_stream``: Predict, Classify, metadata, status,
  on the light client (``tfemotion_client``, from ``client/``: no TensorFlow) with tfemotion's
  settings;
- ``server``: the development server's gRPC transport, ``serve`` and ``start_server``;
- ``rest``: its REST API, as ``tensorflow_model_server --rest_api_port`` answers;
- ``handlers``: Predict and Classify requests checked and run on a loaded version;
- ``modelstore``: versions, policies and labels, loaded as TF Serving loads them;
- ``batching``: server-side batching with TF Serving's parameters and semantics.

The server imports nothing of training: it runs exports (``tfemotion.export``). Its names are
resolved on first use, so that the client does not import TensorFlow before it calls a server.
"""

import importlib

_EXPORTS = {"ServingClient": "client", "ServingError": "client", "query": "client",
            "query_stream": "client", "DevServer": "server", "serve": "server",
            "start_server": "server"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
