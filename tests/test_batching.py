"""Server-side batching with TensorFlow Serving's semantics: merging, rounding, the
inner-dimension rule and its first-element padding, queue limits; and through the dev server."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tfemotion.batching import BatchingParameters, BatchScheduler
from tfemotion.servable import ServableError

REPO = Path(__file__).resolve().parents[1]


class Recorder:
    """A fake session: remembers each batch it ran; output = row sums (one row per input row)."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[dict] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, key, inputs, output_keys=None):
        with self.lock:
            self.batches.append({k: np.array(v) for k, v in inputs.items()})
        time.sleep(self.delay)
        first = next(iter(inputs.values()))
        return {"sum": np.asarray(first).reshape(len(first), -1).sum(axis=1),
                "rows": np.arange(len(first))}


def run_concurrently(scheduler, inputs_list, key="sig"):
    with ThreadPoolExecutor(len(inputs_list)) as pool:
        futures = [pool.submit(scheduler, key, inputs) for inputs in inputs_list]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=30))
            except ServableError as error:
                outcomes.append(error)
        return outcomes


def params(**changes):
    values = dict(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1,
                  max_enqueued_batches=4)
    values.update(changes)
    return BatchingParameters(**values)


def test_the_shipped_batching_config_parses_with_tf_servings_rules():
    shipped = BatchingParameters.read(REPO / "serving" / "batching.config")
    assert shipped.max_batch_size == 128 and shipped.allowed_batch_sizes[-1] == 128
    assert shipped.pad_variable_length_inputs is False and shipped.batch_timeout_micros == 2000
    with pytest.raises(ValueError, match="Last entry in allowed_batch_sizes must match"):
        BatchingParameters.from_text("max_batch_size { value: 8 } allowed_batch_sizes: 4")
    with pytest.raises(ValueError, match="unknown batching parameter 'max_batch'"):
        BatchingParameters.from_text("max_batch { value: 8 }")


def test_batching_text_format_variants_and_fields_not_implemented():
    parsed = BatchingParameters.from_text(
        "max_batch_size: { value: 8 }  # a comment\n"
        "allowed_batch_sizes: [2, 4]\nallowed_batch_sizes: 8\n"
        "thread_pool_name { value: 'pool' }\npad_variable_length_inputs: true")
    assert parsed.max_batch_size == 8 and parsed.allowed_batch_sizes == (2, 4, 8)
    assert parsed.pad_variable_length_inputs is True
    for text, message in [
            ("enable_large_batch_splitting { value: true }", "not implemented by the development"),
            ("max_execution_batch_size { value: 8 }", "not implemented by the development"),
            ("max_batch_size: 8", "written `max_batch_size { value: ... }`"),
            ("pad_variable_length_inputs: yes", "must be true or false"),
            ("max_batch_size { value: 8 } }", "cannot parse")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            BatchingParameters.from_text(text)


def test_concurrent_requests_are_merged_into_one_batch_and_split_back():
    run = Recorder()
    scheduler = BatchScheduler(run, params())
    inputs = [{"x": np.full((1, 2), i)} for i in range(8)]
    outcomes = run_concurrently(scheduler, inputs)
    assert len(run.batches) == 1 and run.batches[0]["x"].shape == (8, 2)  # full: ran at once
    assert sorted(int(o["sum"][0]) for o in outcomes) == [2 * i for i in range(8)]
    assert all(o["sum"].shape == (1,) for o in outcomes)  # each caller gets its own row


def test_a_partial_batch_is_rounded_up_to_an_allowed_size_with_the_last_tasks_first_row():
    run = Recorder()
    scheduler = BatchScheduler(run, params(allowed_batch_sizes=(4, 8),
                                           batch_timeout_micros=100_000))
    outcomes = run_concurrently(scheduler, [{"x": np.full((1, 1), v)} for v in (1, 2, 3)])
    (batch,) = run.batches
    assert batch["x"].shape == (4, 1)
    assert batch["x"][3, 0] == batch["x"][2, 0]  # the padding row repeats the last task's row
    assert sorted(int(o["sum"][0]) for o in outcomes) == [1, 2, 3]


def test_different_inner_dimensions_fail_the_batch_unless_padding_is_on():
    ids = [{"input_ids": np.array([[101, 7]])}, {"input_ids": np.array([[101, 7, 8, 9]])}]
    outcomes = run_concurrently(BatchScheduler(Recorder(), params(max_batch_size=2)), ids)
    assert all(isinstance(o, ServableError) and o.code == "FAILED_PRECONDITION" for o in outcomes)
    assert "different shapes and padding is turned off" in outcomes[0].message
    run = Recorder()
    padded = run_concurrently(BatchScheduler(run, params(max_batch_size=2,
                                                         pad_variable_length_inputs=True)), ids)
    merged = run.batches[0]["input_ids"]
    # The short task is padded with ITS FIRST ELEMENT ([CLS] = 101), not with a pad id.
    assert sorted(merged.tolist()) == [[101, 7, 8, 9], [101, 7, 101, 101]]
    assert sorted(int(o["sum"][0]) for o in padded) == sorted([101 + 7 + 101 + 101, 101 + 7 + 8 + 9])


def test_limits_a_task_larger_than_the_batch_and_a_full_queue():
    scheduler = BatchScheduler(Recorder(), params(max_batch_size=4))
    with pytest.raises(ServableError, match="Task size 5 is larger than maximum input batch "
                                            "size 4") as error:
        scheduler("sig", {"x": np.zeros((5, 1))})
    assert error.value.code == "INVALID_ARGUMENT"
    slow = BatchScheduler(Recorder(delay=0.5), params(max_batch_size=1, max_enqueued_batches=1,
                                                      batch_timeout_micros=0))
    outcomes = run_concurrently(slow, [{"x": np.zeros((1, 1))} for _ in range(6)])
    refused = [o for o in outcomes if isinstance(o, ServableError)]
    # One batch running and one waiting at most (the waiting one counts against the queue):
    # of six simultaneous tasks, at least four are turned away at once.
    assert 4 <= len(refused) <= 5
    assert all(o.code == "UNAVAILABLE" and "queue" in o.message for o in refused)


def test_requests_after_close_run_unbatched_instead_of_failing():
    run = Recorder()
    scheduler = BatchScheduler(run, params())
    scheduler.close()
    outcome = scheduler("sig", {"x": np.full((2, 1), 3)})
    assert outcome["sum"].tolist() == [3, 3] and run.batches[0]["x"].shape == (2, 1)


def test_an_output_without_a_batch_dimension_fails_the_batch():
    scheduler = BatchScheduler(lambda key, inputs, keys=None: {"count": np.array(3)}, params())
    with pytest.raises(ServableError, match="Batched output tensor has 0 dimensions"):
        scheduler("sig", {"x": np.zeros((1, 1))})


def test_devserver_batches_raw_text_like_unbatched_and_shows_why_ids_must_not_be_padded(
        tmp_path):
    """Through gRPC with serving/batching.config: raw-text requests merge and answer as before;
    `encoded` requests of different lengths fail together, or get different scores if padded."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from test_serving import publish, write_fake_export
    from tfemotion.config import ServingConfig
    from tfemotion.devserver import start_server
    from tfemotion.serving import ServingClient

    publish(write_fake_export(tmp_path / "export" / "1"), tmp_path / "base", 1)
    texts = ["i am so happy", "sad and gloomy", "scared", "i adore it"] * 4
    with start_server(tmp_path / "base", ServingConfig(port=0, rest_port=None)) as plain, \
            ServingClient(plain.address) as client:
        expected = [p.scores for p in client.predict(texts)]

    def encoded_request(ids):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "emotion", "encoded"
        request.inputs["input_ids"].CopyFrom(tf.make_tensor_proto(np.array([ids], np.int32)))
        request.inputs["attention_mask"].CopyFrom(
            tf.make_tensor_proto(np.ones((1, len(ids)), np.int32)))
        return request

    happy, sad = (int(tf.strings.to_hash_bucket_fast([word], 4095).numpy()[0]) + 1
                  for word in ("happy", "sad"))
    for pad in (False, True):
        config = tmp_path / f"batching-{pad}.config"
        config.write_text((REPO / "serving" / "batching.config").read_text().replace(
            "batch_timeout_micros { value: 2000 }", "batch_timeout_micros { value: 200000 }")
            .replace("pad_variable_length_inputs: false", f"pad_variable_length_inputs: "
                                                          f"{str(pad).lower()}"))
        with start_server(tmp_path / "base", ServingConfig(
                port=0, rest_port=None, enable_batching=True,
                batching_parameters_file=str(config))) as server, \
                ServingClient(server.address) as client:
            with ThreadPoolExecutor(len(texts)) as pool:
                answers = list(pool.map(lambda t: client.predict([t])[0].scores, texts))
            for got, want in zip(answers, expected):
                assert got == pytest.approx(want, abs=1e-6)
            stub = prediction_service_pb2_grpc.PredictionServiceStub(
                grpc.insecure_channel(server.address))
            alone = tf.make_ndarray(stub.Predict(encoded_request([happy]), timeout=30)
                                    .outputs["probabilities"])
            with ThreadPoolExecutor(2) as pool:
                calls = [pool.submit(stub.Predict, encoded_request(ids), timeout=30)
                         for ids in ([happy], [sad, sad, sad])]
                outcomes = []
                for call in calls:
                    try:
                        outcomes.append(call.result())
                    except grpc.RpcError as error:
                        outcomes.append(error)
            if not pad:
                assert all(isinstance(o, grpc.RpcError)
                           and o.code() == grpc.StatusCode.FAILED_PRECONDITION for o in outcomes)
            else:
                short = tf.make_ndarray(outcomes[0].outputs["probabilities"])
                assert not np.allclose(short, alone, atol=1e-3)  # first-element padding
