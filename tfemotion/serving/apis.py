"""What the development server needs of TensorFlow Serving's APIs (``tensorflow-serving-api``).

The server parses and answers TF Serving's own messages, with TensorFlow's tensor conversions,
so it keeps ``tensorflow-serving-api``, which imports all of TensorFlow (~4 s): its protos and
gRPC stubs are imported on first use (``apis()``), not with the modules that use them. The client
(``tfemotion.serving.client``) uses the light client's generated copies of the same messages
(``tfemotion_client.protos``, no TensorFlow): the bytes on the wire are the same. ``address``
writes a gRPC target for a host and port, as the client does. The tensor keys and signature names
both sides use are those of ``tfemotion.export.signatures``.

Example:
    >>> address("::1", 8500), address("127.0.0.1", 8500)
    ('[::1]:8500', '127.0.0.1:8500')
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from tfemotion_client.messages import address  # noqa: F401  (the client's, for the server's logs)


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
