"""tfemotion's light client: classify texts with a TensorFlow Serving model over gRPC.

grpcio and protobuf are all it needs: TF Serving's messages and stubs are generated into
``tfemotion_client.protos`` (a descriptor pool of their own, so that a real TensorFlow can be
imported beside them), and tensors are read and written without NumPy. ``tfemotion`` uses it for
``tfemotion query`` and ``tfemotion.serving.ServingClient``; ``tfemotion-query`` is its command.

Example:
    >>> from tfemotion_client import ServingClient
    >>> with ServingClient(serving_address) as client:  # e.g. "127.0.0.1:8500"
    ...     client.predict("i feel so happy today")[0].label in client.predict("so sad")[0].scores
    True
"""

__version__ = "0.1.0"

from tfemotion_client.client import (Prediction, ServingClient, ServingError,  # noqa: E402
                                     query_stream)
from tfemotion_client.messages import parse_server  # noqa: E402

__all__ = ["__version__", "Prediction", "ServingClient", "ServingError", "parse_server",
           "query_stream"]
