# Beam workers for `tfemotion score` on Dataflow, Flink or Spark (serving/bulk-scoring.md):
# Beam's SDK container for this Python and Beam version, with TensorFlow and tfemotion added.
# tfemotion goes in without its dependencies: scoring imports neither transformers nor datasets.
# Build from the repository root after `python -m build --wheel`:
#   docker build -f serving/beam-worker.Dockerfile -t IMAGE .
FROM apache/beam_python3.11_sdk:2.77.0
COPY dist/tfemotion-*.whl /tmp/
RUN pip install --no-cache-dir tensorflow==2.21.0 && \
    pip install --no-cache-dir --no-deps /tmp/tfemotion-*.whl && \
    rm /tmp/tfemotion-*.whl
