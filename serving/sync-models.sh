#!/bin/sh
# Copy exports from object storage into the model base path that TensorFlow Serving watches.
#
#   sync-models.sh SOURCE TARGET wait   # init container: return once a version is there
#   sync-models.sh SOURCE TARGET loop   # sidecar: pick up new versions every SYNC_INTERVAL s
#
# SOURCE is a bucket folder holding VERSION/ exports (gs://bucket/emotion, s3://bucket/emotion),
# TARGET the model's folder (/models/emotion). Each version is copied to a hidden staging folder
# first and renamed into place only when complete: TensorFlow Serving loads a version as soon as
# its folder appears, and must never see half of one. Nothing is ever deleted: retiring a
# version is models.config's job. An empty or unreachable SOURCE is waited for, not an error, so
# the pod waits for its first export instead of crash-looping.
#
# SYNC_COMMAND copies SOURCE's content into a folder (default: gsutil, for gs://; for s3:// use
# "aws s3 sync"); SYNC_INTERVAL is the seconds between two looks (default 30).
set -eu
source_url=$1
target=$2
mode=${3:-wait}
sync_command=${SYNC_COMMAND:-gsutil -m -q rsync -r}
interval=${SYNC_INTERVAL:-30}
staging="$target/.staging"
mkdir -p "$target" "$staging"

has_version() {
  ls "$target" | grep -qE '^[0-9]+$'
}

sync_once() {
  if ! $sync_command "$source_url" "$staging"; then
    echo "sync-models: cannot read $source_url yet; trying again in ${interval}s" >&2
    return 0
  fi
  for folder in "$staging"/*/; do
    [ -d "$folder" ] || continue
    version=$(basename "$folder")
    case "$version" in *[!0-9]*) continue ;; esac
    [ -e "$target/$version" ] && continue
    [ -f "$folder/saved_model.pb" ] || continue
    rm -rf "$target/.tmp-$version"
    cp -r "$folder" "$target/.tmp-$version"
    mv "$target/.tmp-$version" "$target/$version"  # atomic: one filesystem
    echo "sync-models: version $version of $source_url is in $target"
  done
}

while :; do
  sync_once
  if [ "$mode" = wait ] && has_version; then
    exit 0
  fi
  if [ "$mode" = wait ]; then
    echo "sync-models: waiting for a first export under $source_url" >&2
  fi
  sleep "$interval"
done
