#!/usr/bin/env bash
# Serve the exports of `make run` with the stock CPU image of TensorFlow Serving.
#
#   serving/run-cpu.sh                              # foreground; Ctrl-C stops it
#   MODELS=/path/to/base serving/run-cpu.sh         # another model base path
#   BATCHING_CONFIG=batching-cpu-throughput.config serving/run-cpu.sh   # a server kept busy
#
# The release and the model base path come from serving/.env (TF_SERVING_VERSION, MODELS); the
# environment wins over the file. Same flags and config files as docker-compose.gpu.yml, without
# a GPU, and the CPU batching choices of batching-cpu.config (BATCHING_CONFIG: another file of
# this folder, such as batching-cpu-throughput.config; both files say when to use them).
# No Docker? `tfemotion serve --base-path runs/emotion/serving --model-config serving/models.config
# --session-config serving/session.config`
# runs the development server (the same gRPC and REST APIs; not for production).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
while IFS='=' read -r key value; do
  case "$key" in ''|\#*) continue ;; esac
  if [ -z "${!key:-}" ]; then export "$key=$value"; fi
done < "$here/.env"
version="$TF_SERVING_VERSION"
batching="${BATCHING_CONFIG:-batching-cpu.config}"
if [ ! -f "$here/$batching" ]; then
  echo "BATCHING_CONFIG=$batching: no such file in $here" >&2
  exit 1
fi
models="$MODELS"
case "$models" in /*) ;; *) models="$here/$models" ;; esac
if ! ls "$models/emotion" 2>/dev/null | grep -qE '^[0-9]+$'; then
  echo "No export under $models/emotion: run \`make run\` (or set MODELS)." >&2
  exit 1
fi

exec docker run --rm --name tfemotion-serving \
  -p 8500:8500 -p 8501:8501 \
  -v "$models:/models:ro" \
  -v "$here/models.config:/config/models.config:ro" \
  -v "$here/$batching:/config/batching.config:ro" \
  -v "$here/monitoring.config:/config/monitoring.config:ro" \
  -v "$here/session.config:/config/session.config:ro" \
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
  --tensorflow_session_config_file=/config/session.config \
  --enable_model_warmup=true
