"""Server-side batching with TensorFlow Serving's semantics: merging, rounding, the
inner-dimension rule and its first-element padding, queue limits, large batch splitting; and
through the dev server."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from support import REPO, wait_until

from tfemotion.serving.batching import BatchingParameters, BatchScheduler
from tfemotion.export.servable import ServableError

# A batch window no test waits out: a batch runs because it is full, or because the scheduler
# closes (close() runs what is queued), never because time passed, however slow the machine.
HOUR = 3_600_000_000


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
    values = dict(max_batch_size=8, batch_timeout_micros=HOUR, num_batch_threads=1,
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


def test_batching_text_format_variants_and_fields_in_the_wrong_form():
    parsed = BatchingParameters.from_text(
        "max_batch_size: { value: 8 }  # a comment\n"
        "allowed_batch_sizes: [2, 4]\nallowed_batch_sizes: 8\n"
        "thread_pool_name { value: 'pool' }\npad_variable_length_inputs: true")
    assert parsed.max_batch_size == 8 and parsed.allowed_batch_sizes == (2, 4, 8)
    assert parsed.pad_variable_length_inputs is True
    assert parsed.enable_large_batch_splitting is False
    for text, message in [
            # Both are wrapped in session_bundle_config.proto (BoolValue, Int64Value).
            ("enable_large_batch_splitting: true",
             "written `enable_large_batch_splitting { value: ... }`"),
            ("max_execution_batch_size: 8", "written `max_execution_batch_size { value: ... }`"),
            ("max_batch_size: 8", "written `max_batch_size { value: ... }`"),
            ("pad_variable_length_inputs { value: true }", "written `pad_variable_length_inputs: "
                                                           "...`"),
            ("pad_variable_length_inputs: yes", "must be true or false"),
            ("max_batch_size { value: 8 } enable_large_batch_splitting { value: yes }",
             "enable_large_batch_splitting must be true or false, got 'yes'"),
            ("max_batch_size { value: 8 } }", "cannot parse")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            BatchingParameters.from_text(text)


def test_splitting_fields_parse_with_tf_servings_defaults_and_checks():
    split = BatchingParameters.from_text(
        "max_batch_size { value: 64 }\nenable_large_batch_splitting: { value: True }\n"
        "max_execution_batch_size { value: 16 }\nallowed_batch_sizes: [8, 16, 64]")
    assert split.enable_large_batch_splitting is True and split.max_batch_size == 64
    assert split.max_execution_batch_size == 16 and split.execution_batch_size == 16
    # Unset max_execution_batch_size: max_batch_size (bundle_factory_util.h).
    default = BatchingParameters.from_text("max_batch_size { value: 32 }\n"
                                           "enable_large_batch_splitting { value: t }")
    assert default.max_execution_batch_size is None and default.execution_batch_size == 32
    # Without splitting max_execution_batch_size is ignored, even larger than max_batch_size.
    for switch in ("", "enable_large_batch_splitting { value: false }"):
        off = BatchingParameters.from_text(
            f"max_batch_size {{ value: 8 }} max_execution_batch_size {{ value: 16 }} {switch}")
        assert off.enable_large_batch_splitting is False and off.execution_batch_size == 8
    for text, message in [
            ("max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
             "max_execution_batch_size { value: 16 }",
             "When enable_large_batch_splitting is true, input_batch_size_limit must be greater "
             "than or equal to max_execution_batch_size"),
            ("enable_large_batch_splitting { value: true }",
             "needs max_batch_size or max_execution_batch_size"),
            ("max_batch_size { value: 8 } enable_large_batch_splitting { value: 1 } "
             "max_execution_batch_size { value: 0 }", "max_execution_batch_size must be positive"),
            # The model server compares the last allowed size with max_batch_size, splitting
            # or not (bundle_factory_util.cc), so ending at max_execution_batch_size fails there.
            ("max_batch_size { value: 64 } enable_large_batch_splitting { value: true } "
             "max_execution_batch_size { value: 16 } allowed_batch_sizes: [8, 16]",
             "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 16; "
             "expected 64")]:
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
    scheduler = BatchScheduler(run, params(allowed_batch_sizes=(4, 8)))
    with ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(scheduler, "sig", {"x": np.full((1, 1), v)}) for v in (1, 2, 3)]
        wait_until(lambda: scheduler.num_enqueued_tasks() == 3)
        scheduler.close()  # runs the open batch of 3 now, as its window would have
        outcomes = [call.result(30) for call in calls]
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
    gate = Gate()
    held = BatchScheduler(gate, params(max_batch_size=1, max_enqueued_batches=1))
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(held, "sig", {"x": np.zeros((1, 1))})  # full: runs, held
        assert gate.entered.wait(30)
        waiting = pool.submit(held, "sig", {"x": np.ones((1, 1))})  # the open batch: 1 of 1
        wait_until(lambda: held.num_enqueued_tasks() == 1)
        # One batch running and one waiting (it counts against the queue): the rest are
        # turned away at once.
        refused = []
        for _ in range(4):
            with pytest.raises(ServableError) as error:
                held("sig", {"x": np.zeros((1, 1))})
            refused.append(error.value)
        gate.release.set()
        assert running.result(30)["sum"].tolist() == [0]
        assert waiting.result(30)["sum"].tolist() == [1]
    assert all(o.code == "UNAVAILABLE" and "queue" in o.message for o in refused)


def test_requests_after_close_run_unbatched_instead_of_failing():
    run = Recorder()
    scheduler = BatchScheduler(run, params())
    scheduler.close()
    outcome = scheduler("sig", {"x": np.full((2, 1), 3)})
    assert outcome["sum"].tolist() == [3, 3] and run.batches[0]["x"].shape == (2, 1)


def test_an_output_without_a_batch_dimension_fails_the_batch():
    scheduler = BatchScheduler(lambda key, inputs, keys=None: {"count": np.array(3)},
                               params(batch_timeout_micros=0))
    with pytest.raises(ServableError, match="Batched output tensor has 0 dimensions"):
        scheduler("sig", {"x": np.zeros((1, 1))})


@pytest.mark.integration  # a server with batching, through gRPC: seconds
def test_devserver_batches_raw_text_like_unbatched_and_shows_why_ids_must_not_be_padded(
        tmp_path):
    """Through gRPC with serving/batching.config: raw-text requests merge and answer as before;
    `encoded` requests of different lengths fail together, or get different scores if padded."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from support import publish, write_fake_export
    from tfemotion.config import ServingConfig
    from tfemotion.serving.server import start_server
    from tfemotion.serving.client import ServingClient

    publish(write_fake_export(tmp_path / "export" / "1"), tmp_path / "base", 1)
    texts = ["i am so happy", "sad and gloomy", "scared", "i adore it"] * 4

    def encoded_request(ids):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "emotion", "encoded"
        request.inputs["input_ids"].CopyFrom(tf.make_tensor_proto(np.array([ids], np.int32)))
        request.inputs["attention_mask"].CopyFrom(
            tf.make_tensor_proto(np.ones((1, len(ids)), np.int32)))
        return request

    happy, sad = (int(tf.strings.to_hash_bucket_fast([word], 4095).numpy()[0]) + 1
                  for word in ("happy", "sad"))
    with start_server(tmp_path / "base", ServingConfig(port=0, rest_port=None)) as plain, \
            ServingClient(plain.address) as client:
        expected = [p.scores for p in client.predict(texts)]
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(plain.address))
        alone = tf.make_ndarray(stub.Predict(encoded_request([happy]), timeout=30)
                                .outputs["probabilities"])

    shipped = tmp_path / "batching.config"  # its window widened, so that requests merge
    shipped.write_text((REPO / "serving" / "batching.config").read_text().replace(
        "batch_timeout_micros { value: 2000 }", "batch_timeout_micros { value: 200000 }"))
    with start_server(tmp_path / "base", ServingConfig(
            port=0, rest_port=None, enable_batching=True,
            batching_parameters_file=str(shipped))) as server, \
            ServingClient(server.address) as client:
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(lambda t: client.predict([t])[0].scores, texts))
    for got, want in zip(answers, expected):  # however they were merged
        assert got == pytest.approx(want, abs=1e-6)

    # Without warm-up requests: each would wait for a second request to fill its batch.
    publish(write_fake_export(tmp_path / "unwarmed" / "1", warmup=False), tmp_path / "bare", 1)
    for pad in (False, True):
        # Batches of two, which the two requests below fill whenever each arrives: the batch
        # runs once full, never by its window.
        config = tmp_path / f"batching-{pad}.config"
        config.write_text(f"max_batch_size {{ value: 2 }}\nbatch_timeout_micros {{ value: {HOUR} }}"
                          f"\npad_variable_length_inputs: {str(pad).lower()}\n")
        with start_server(tmp_path / "bare", ServingConfig(
                port=0, rest_port=None, enable_batching=True,
                batching_parameters_file=str(config))) as server:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(
                grpc.insecure_channel(server.address))
            with ThreadPoolExecutor(2) as pool:
                calls = [pool.submit(stub.Predict, encoded_request(ids), timeout=60)
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


def splitting(**changes):
    return params(**{"max_batch_size": 16, "enable_large_batch_splitting": True,
                     "max_execution_batch_size": 4, **changes})


class Gate(Recorder):
    """A Recorder whose batches wait for ``release`` (``entered`` tells one has started)."""

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, key, inputs, output_keys=None):
        self.entered.set()
        self.release.wait(30)
        return super().__call__(key, inputs, output_keys)


def test_with_splitting_a_batch_is_full_at_max_execution_batch_size():
    run = Recorder()
    # A window of an hour: batches that waited for it would outlast run_concurrently's 30 s.
    scheduler = BatchScheduler(run, splitting(batch_timeout_micros=3_600_000_000))
    outcomes = run_concurrently(scheduler, [{"x": np.full((1, 1), i)} for i in range(8)])
    # Two full batches of 4 ran at once (full: closed at once), though max_batch_size (16)
    # would hold all 8.
    assert [len(batch["x"]) for batch in run.batches] == [4, 4]
    assert sorted(int(o["sum"][0]) for o in outcomes) == list(range(8))
    # A task up to max_batch_size is accepted, and split into batches of 4.
    outcome = scheduler("sig", {"x": np.arange(12).reshape(12, 1)})
    assert [len(batch["x"]) for batch in run.batches[2:]] == [4, 4, 4]
    assert outcome["sum"].tolist() == list(range(12))
    with pytest.raises(ServableError, match="Task size 17 is larger than maximum input batch "
                                            "size 16"):
        scheduler("sig", {"x": np.zeros((17, 1))})
    # Without splitting max_execution_batch_size changes nothing: one batch of max_batch_size.
    run = Recorder()
    plain = BatchScheduler(run, params(max_batch_size=8, max_execution_batch_size=4))
    run_concurrently(plain, [{"x": np.full((1, 1), i)} for i in range(8)])
    assert [len(batch["x"]) for batch in run.batches] == [8]


def test_a_task_larger_than_the_room_left_is_split_and_answers_like_an_unbatched_run():
    run = Recorder()
    scheduler = BatchScheduler(run, splitting(allowed_batch_sizes=(2, 4, 16)))
    small = {"x": np.arange(6).reshape(3, 2) + 100}
    large = {"x": np.arange(16).reshape(8, 2)}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(scheduler, "sig", small)
        wait_until(lambda: scheduler.num_enqueued_tasks() == 1)  # 3 rows: room for 1 more
        second = pool.submit(scheduler, "sig", large)
        wait_until(lambda: len(run.batches) == 2)  # the two full batches ran
        scheduler.close()  # the last part's batch (3 rows) runs now, as its window would have
        small_out, large_out = first.result(30), second.result(30)
    # Parts of 1, 4 and 3 rows: the first fills the open batch, the last is rounded up to 4 by
    # repeating ITS first row (a part is a task of its own).
    batches = [batch["x"] for batch in run.batches]
    assert [len(batch) for batch in batches] == [4, 4, 4]
    np.testing.assert_array_equal(batches[0], np.concatenate([small["x"], large["x"][:1]]))
    np.testing.assert_array_equal(batches[1], large["x"][1:5])
    np.testing.assert_array_equal(batches[2], np.concatenate([large["x"][5:], large["x"][5:6]]))
    alone = Recorder()("sig", large)
    np.testing.assert_array_equal(large_out["sum"], alone["sum"])  # in order, padding dropped
    assert large_out["rows"].tolist() == [3, 0, 1, 2, 3, 0, 1, 2]  # rows of three batches
    np.testing.assert_array_equal(small_out["sum"], small["x"].sum(axis=1))


def test_an_error_in_one_part_fails_the_split_task_and_only_the_tasks_of_that_batch():
    class FailsOnNegative(Recorder):
        def __call__(self, key, inputs, output_keys=None):
            result = super().__call__(key, inputs, output_keys)
            if (inputs["x"] < 0).any():
                raise ServableError("INVALID_ARGUMENT", "negative input")
            return result

    run = FailsOnNegative()
    scheduler = BatchScheduler(run, splitting())
    ok = {"x": np.ones((2, 1))}
    bad = {"x": np.concatenate([np.ones((9, 1)), -np.ones((1, 1))])}  # last row in part 3
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(scheduler, "sig", ok)
        wait_until(lambda: scheduler.num_enqueued_tasks() == 1)
        second = pool.submit(scheduler, "sig", bad)  # parts of 2 (joins ok's), 4 and 4: full
        assert first.result(30)["sum"].tolist() == [1, 1]  # shared batch 1 with part 1: fine
        with pytest.raises(ServableError, match="negative input") as error:
            second.result(30)
    assert error.value.code == "INVALID_ARGUMENT"
    assert [len(batch["x"]) for batch in run.batches] == [4, 4, 4]  # every part ran


def test_concurrent_callers_of_any_size_get_their_own_rows_back_in_order():
    sizes = np.random.default_rng(0).integers(1, 9, 24)
    inputs = [{"x": np.arange(size * 2).reshape(size, 2) + 1000 * i}
              for i, size in enumerate(sizes)]
    run = Recorder(delay=0.01)
    scheduler = BatchScheduler(run, splitting(max_batch_size=8, num_batch_threads=2,
                                              max_enqueued_batches=100,
                                              batch_timeout_micros=20_000))
    outcomes = run_concurrently(scheduler, inputs)
    for outcome, given in zip(outcomes, inputs):
        np.testing.assert_array_equal(outcome["sum"], given["x"].sum(axis=1))
    batch_sizes = [len(batch["x"]) for batch in run.batches]
    assert max(batch_sizes) <= 4 and sum(batch_sizes) == sum(sizes) and max(sizes) > 4
    ran = sorted(map(tuple, np.concatenate([batch["x"] for batch in run.batches]).tolist()))
    assert ran == sorted(map(tuple, np.concatenate([i["x"] for i in inputs]).tolist()))


def test_with_splitting_the_queue_bound_counts_rows():
    """Capacity = (max_enqueued_batches - waiting batches, the open one included) * 4 + room
    left in the open batch; the batch a thread runs no longer counts."""
    gate = Gate()
    scheduler = BatchScheduler(gate, splitting(max_batch_size=8, max_enqueued_batches=2))
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(scheduler, "sig", {"x": np.zeros((4, 1))})  # full: runs, held
        assert gate.entered.wait(30)
        queued = pool.submit(scheduler, "sig", {"x": np.ones((8, 1))})  # (2-1)*4+4 = 8: fits
        wait_until(lambda: scheduler.num_enqueued_tasks() == 2)  # two parts of 4 wait
        with pytest.raises(ServableError) as refused:
            scheduler("sig", {"x": np.zeros((1, 1))})
        gate.release.set()
        assert running.result(30)["sum"].tolist() == [0] * 4
        assert queued.result(30)["sum"].tolist() == [1] * 8
    assert refused.value.code == "UNAVAILABLE"
    assert refused.value.message == (
        "The batch scheduling queue to which this task was submitted is full; task size is 1 "
        "but scheduling capacity is only 0 (num_enqueued_batches=2, max_enqueued_batches=2, "
        "open_batch_size=4, max_execution_batch_size=4)")
    assert [len(batch["x"]) for batch in gate.batches] == [4, 4, 4]

    # One batch allowed: a task of max_batch_size (8) needs two, and is turned away; without
    # splitting the same task is one batch and is accepted.
    gate = Gate()
    scheduler = BatchScheduler(gate, splitting(max_batch_size=8, max_enqueued_batches=1))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(scheduler, "sig", {"x": np.zeros((4, 1))})
        assert gate.entered.wait(30)
        with pytest.raises(ServableError, match="task size is 8 but scheduling capacity is only "
                                                "4 "):
            scheduler("sig", {"x": np.ones((8, 1))})
        gate.release.set()
        running.result(30)
    plain = BatchScheduler(Recorder(), params(max_batch_size=8, max_enqueued_batches=1))
    assert plain("sig", {"x": np.ones((8, 1))})["sum"].tolist() == [1] * 8


def test_devserver_with_large_batch_splitting_answers_like_unbatched(tmp_path):
    """A batching file with enable_large_batch_splitting and max_execution_batch_size loads in
    the dev server; requests larger than a batch are split and answered as before."""
    from support import publish, write_fake_export
    from tfemotion.config import ServingConfig
    from tfemotion.serving.server import start_server
    from tfemotion.serving.client import ServingClient

    publish(write_fake_export(tmp_path / "export" / "1"), tmp_path / "base", 1)
    texts = ["i am so happy", "sad and gloomy", "scared", "i adore it", "angry", "wow"] * 2
    with start_server(tmp_path / "base", ServingConfig(port=0, rest_port=None)) as plain, \
            ServingClient(plain.address) as client:
        expected = [p.scores for p in client.predict(texts)]
    config = tmp_path / "batching.config"
    config.write_text("max_batch_size { value: 128 }\nbatch_timeout_micros { value: 50000 }\n"
                      "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 64 }\n"
                      "enable_large_batch_splitting { value: true }\n"
                      "max_execution_batch_size { value: 4 }\n")
    with start_server(tmp_path / "base", ServingConfig(
            port=0, rest_port=None, enable_batching=True,
            batching_parameters_file=str(config))) as server, \
            ServingClient(server.address) as client:
        whole = [p.scores for p in client.predict(texts)]  # 12 rows: 3 batches of 4
        with ThreadPoolExecutor(3) as pool:
            thirds = list(pool.map(lambda i: client.predict(texts[i:i + 4]), (0, 4, 8)))
    for got, want in zip(whole + [p.scores for third in thirds for p in third], expected * 2):
        assert got == pytest.approx(want, abs=1e-6)
