"""The development server: session config, ports, arguments."""

from __future__ import annotations


from support import REPO, publish

import pytest
from tfemotion.config import ServingConfig
from tfemotion.serving.server import DevServer


def test_the_server_runs_its_sessions_with_the_session_config(server):
    from tensorflow.core.protobuf import rewriter_config_pb2

    rewrite = server.store.session_config.graph_options.rewrite_options
    assert rewrite.function_optimization == rewriter_config_pb2.RewriterConfig.OFF
    loaded = server.store.servables["emotion"][1]
    assert loaded.servable.session._config.graph_options.rewrite_options.function_optimization \
        == rewriter_config_pb2.RewriterConfig.OFF


def test_devserver_on_a_busy_port_fails_before_loading_any_model(tmp_path, server, fake_export,
                                                                 monkeypatch):
    publish(fake_export, tmp_path, 1)
    port = int(server.address.rsplit(":", 1)[1])
    busy = DevServer(tmp_path, ServingConfig(port=port, rest_port=None))
    monkeypatch.setattr(busy.store, "refresh",
                        lambda **_: pytest.fail("loaded the models before binding the port"))
    with pytest.raises(OSError, match="choose another with --port"):
        busy.start()


def test_devserver_refuses_bad_arguments_and_busy_ports(tmp_path, server):
    with pytest.raises(ValueError, match="base_path must be a folder"):
        DevServer(tmp_path / "missing")
    port = int(server.address.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="Cannot bind"):
        DevServer(tmp_path, ServingConfig(port=port, rest_port=None)).start()
    bad_config = tmp_path / "models.config"
    bad_config.write_text("model_config_list { config { nme: 'emotion' } }")
    for path, message in ((tmp_path / "none.config", "Cannot read the model config"),
                          (bad_config, "nme")):
        with pytest.raises(ValueError, match=message):
            DevServer(tmp_path, ServingConfig(model_config_file=str(path)))
    bad_session = tmp_path / "session.config"
    bad_session.write_text("graph_options { rewrite_options { function_optimization: MAYBE } }")
    with pytest.raises(ValueError, match=r"session config .*session.config, line 1.*MAYBE"):
        DevServer(tmp_path, ServingConfig(session_config_file=str(bad_session)))
    assert ServingConfig(port=0).port == 0
    with pytest.raises(ValueError, match="port must be in 0..65535"):
        ServingConfig(port=70000)
    with pytest.raises(ValueError, match="poll_interval"):
        ServingConfig(poll_interval=0)


def test_batching_sizes_the_workers_so_that_batches_fill():
    """A batch fills only if as many requests run at once as it holds (issue: with 8 threads
    and batches of 32, every request waited out the window)."""
    from tfemotion.serving.batching import BatchingParameters
    from tfemotion.serving.server import concurrency

    throughput = BatchingParameters.read(str(REPO / "serving" / "batching-cpu-throughput.config"))
    workers, bound = concurrency(ServingConfig(), throughput)
    assert workers >= throughput.execution_batch_size * (throughput.num_batch_threads + 1)
    assert bound >= workers + throughput.execution_batch_size * throughput.max_enqueued_batches
    assert concurrency(ServingConfig(workers=3, max_concurrent_requests=5), throughput) == (3, 5)


@pytest.mark.integration  # a server with two requests held in it
def test_past_the_bound_grpc_answers_resource_exhausted_and_rest_429(tmp_path, fake_export,
                                                                    monkeypatch):
    """Requests held in the model fill the server; the next one is refused at once (not queued:
    a queued call would wait for the held ones, which are let go only after it answered)."""
    import json
    import threading
    import urllib.error
    import urllib.request

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfemotion.serving.server import start_server

    publish(fake_export, tmp_path / "base", 1)
    config = ServingConfig(port=0, rest_port=0, poll_interval=3600, workers=2,
                           max_concurrent_requests=2)
    with start_server(tmp_path / "base", config) as server:
        loaded = server.store.servables["emotion"][1]
        held, release = threading.Semaphore(0), threading.Event()

        def hold(key, inputs, output_keys=None):  # the model, holding each request it runs
            held.release()
            release.wait(60)
            return loaded.servable.run(key, inputs, output_keys)

        monkeypatch.setattr(loaded, "runner", hold)

        def fill(start_two_requests):
            """Start two requests, wait until the model holds both, then let them go after the
            block (the caller's checks)."""
            threads = [threading.Thread(target=start_two_requests) for _ in range(2)]
            for thread in threads:
                thread.start()
            for _ in range(2):
                assert held.acquire(timeout=60)
            return threads

        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(server.address))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "emotion"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(["i am happy"]))
        waiting = fill(lambda: stub.Predict(request, timeout=60))
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=20)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        release.set()
        for thread in waiting:
            thread.join()
        release.clear()
        post = urllib.request.Request(server.rest_url + "/v1/models/emotion:predict",
                                      data=json.dumps({"instances": ["x"]}).encode())
        waiting = fill(lambda: urllib.request.urlopen(post, timeout=60))
        with pytest.raises(urllib.error.HTTPError) as too_many:
            urllib.request.urlopen(post, timeout=20)
        assert too_many.value.code == 429
        assert "max_concurrent_requests" in json.loads(too_many.value.read())["error"]
        release.set()
        for thread in waiting:
            thread.join()
