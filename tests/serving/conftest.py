"""The development server the serving tests talk to: the stand-in export, as the docs run it
(with serving/session.config), and clients of it."""

from __future__ import annotations

import pytest

from support import LIMITS, REPO, publish

SHIPPED_SESSION_CONFIG = REPO / "serving" / "session.config"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_export):
    """The development server as the docs run it: with serving/session.config."""
    from tfemotion.config import ServingConfig
    from tfemotion.serving import start_server

    base = tmp_path_factory.mktemp("base")
    publish(fake_export, base, 1)
    config = ServingConfig(port=0, poll_interval=60,
                           session_config_file=str(SHIPPED_SESSION_CONFIG), **LIMITS)
    with start_server(base, config) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server):
    """A raw PredictionService stub on the server (what a client of TF Serving's docs uses)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server.address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture()
def client(server):
    """A ServingClient on the server, without retries."""
    from tfemotion.serving import ServingClient

    with ServingClient(server.address, retries=0) as c:
        yield c
