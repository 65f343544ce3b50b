"""TensorFlow Serving's warm-up file: requests the server replays before a version takes traffic.

``assets.extra/tf_serving_warmup_requests`` holds ``PredictionLog`` records (at most 1,000): one
``serving_default`` request per batch size the server will run, so that every batch shape is
set up in advance, a Classify request, and an ``encoded`` request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tfemotion.export.signatures import (ATTENTION_MASK, CLASSIFY, ENCODED, INPUT_IDS, PREDICT,
                                         TEXT, WARMUP_FILE)

WARMUP_TEXTS = ("i feel happy today", "i am so scared of what comes next",
                 "i love this", "he was furious and i felt angry", "what a surprise",
                 "i feel sad and lonely", "", "Ça va? 中文 😀")
# Warm-up texts are cut to this many characters: a batch of 128 long validation texts read in
# windows could otherwise pass the export's cap on windows, and the server would refuse the
# version. The shapes warmed up are the windows' anyway.
WARMUP_CHARS = 1000


def write_warmup(folder: Path, name: str, tokenizer: Any, raw_text: bool, texts: list[str],
                  max_length: int, batch_sizes: Sequence[int]) -> int:
    """TF Serving replays these PredictionLog records before the version takes traffic.

    Raw-text exports get one ``serving_default`` request per batch size (texts repeated as
    needed), so each batch shape the server will run is set up beforehand, plus a Classify
    request; every export gets an ``encoded`` request.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                         prediction_log_pb2)

    def spec(signature):
        return model_pb2.ModelSpec(name=name, signature_name=signature)

    def batch_of(size):
        return [texts[i % len(texts)][:WARMUP_CHARS] for i in range(size)]

    logs = []
    if raw_text:
        for size in sorted(set(batch_sizes)):
            request = predict_pb2.PredictRequest(model_spec=spec(PREDICT))
            request.inputs[TEXT].CopyFrom(tf.make_tensor_proto(batch_of(size), dtype=tf.string))
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
        examples = [_example(text) for text in batch_of(2)]
        request = classification_pb2.ClassificationRequest(
            model_spec=spec(CLASSIFY),
            input=input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples)))
        logs.append(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog(request=request)))
    encoded = tokenizer(batch_of(8), truncation=True, max_length=max_length, padding=True,
                        return_tensors="np")
    request = predict_pb2.PredictRequest(model_spec=spec(ENCODED))
    for key in (INPUT_IDS, ATTENTION_MASK):
        request.inputs[key].CopyFrom(tf.make_tensor_proto(encoded[key].astype("int32")))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
    path = folder / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def _example(text: str) -> Any:
    import tensorflow as tf

    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={TEXT: feature}))
