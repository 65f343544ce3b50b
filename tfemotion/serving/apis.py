"""What the client and the development server both need of TensorFlow Serving's APIs.

``tensorflow-serving-api`` imports all of TensorFlow (~4 s), so its protos and gRPC stubs are
imported on first use (``apis()``), not with the modules that use them; ``address`` writes a
gRPC target for a host and port. The tensor keys and signature names both sides use are those
of ``tfemotion.export.signatures``.

Example:
    >>> address("::1", 8500), address("127.0.0.1", 8500)
    ('[::1]:8500', '127.0.0.1:8500')
"""

from __future__ import annotations

import functools
from types import SimpleNamespace


@functools.lru_cache(maxsize=None)
def apis() -> SimpleNamespace:
    """grpc, TensorFlow and TF Serving's proto and stub modules, imported on first use.

    Example:
        >>> apis().predict.PredictRequest().model_spec.name
        ''
    """
    try:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                             get_model_status_pb2, model_pb2,
                                             model_service_pb2_grpc, predict_pb2,
                                             prediction_service_pb2_grpc)
    except ImportError as error:  # pragma: no cover - part of the base install
        raise ImportError(
            "Serving needs grpcio and tensorflow-serving-api: "
            "pip install 'tensorflow-serving-api>=2.16' grpcio") from error
    return SimpleNamespace(grpc=grpc, tf=tf, classification=classification_pb2,
                           metadata=get_model_metadata_pb2, status=get_model_status_pb2,
                           model=model_pb2, model_service=model_service_pb2_grpc,
                           predict=predict_pb2, prediction_service=prediction_service_pb2_grpc)


def address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
