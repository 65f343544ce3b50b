#!/usr/bin/env bash
# Serve the exports in serving/models with the stock CPU image of TensorFlow Serving.
#
#   serving/run-cpu.sh                      # foreground; Ctrl-C stops it
#   MODELS=/path/to/base serving/run-cpu.sh
#
# Same flags and config files as docker-compose.gpu.yml, without a GPU. On CPU, batching still
# pays off under concurrent load (one matrix product for many texts); set num_batch_threads in
# batching.config to the number of physical cores of the machine.
# No Docker? `tfemotion serve --base-path serving/models --model-config serving/models.config`
# runs the development server (same gRPC API; no REST, no batching; not for production).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${TF_SERVING_VERSION:-2.21.0}"
models="${MODELS:-$here/models}"

exec docker run --rm --name tfemotion-serving \
  -p 8500:8500 -p 8501:8501 \
  -v "$models:/models:ro" \
  -v "$here/models.config:/config/models.config:ro" \
  -v "$here/batching.config:/config/batching.config:ro" \
  -v "$here/monitoring.config:/config/monitoring.config:ro" \
  --entrypoint tensorflow_model_server \
  "tensorflow/serving:$version" \
  --port=8500 \
  --rest_api_port=8501 \
  --model_config_file=/config/models.config \
  --model_config_file_poll_wait_seconds=60 \
  --allow_version_labels_for_unavailable_models=true \
  --enable_batching=true \
  --batching_parameters_file=/config/batching.config \
  --monitoring_config_file=/config/monitoring.config \
  --enable_model_warmup=true
