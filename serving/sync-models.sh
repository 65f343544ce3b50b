#!/bin/sh
# Copy exports from object storage into the model base path that TensorFlow Serving watches.
#
#   sync-models.sh SOURCE TARGET wait   # init container: return once the served versions are there
#   sync-models.sh SOURCE TARGET loop   # sidecar: pick up new versions every SYNC_INTERVAL s
#
# SOURCE is a bucket folder holding VERSION/ exports (gs://bucket/emotion, s3://bucket/emotion),
# TARGET the model's folder (/models/emotion). Each look copies SOURCE into a hidden staging
# folder; a version is renamed into TARGET only once its staged files (names and sizes) are the
# same on two looks in a row, so an upload still under way is never published: TensorFlow
# Serving loads a version as soon as its folder appears, and must never see half of one.
#
# "wait" returns once every version that MODELS_CONFIG (default /config/models.config) lists
# under `versions:` is in TARGET (any version, if it lists none), so the server starts with
# what it is told to serve. An empty or unreachable SOURCE is waited for, not an error: the pod
# waits in Init for its first export instead of crash-looping.
#
# Nothing is ever deleted: retiring a version is models.config's job, and the staging copy
# stays, so TARGET's disk needs room for the exports twice.
#
# SYNC_COMMAND copies SOURCE's content into a folder (default: gsutil, for gs://; for s3:// use
# "aws s3 sync"); SYNC_INTERVAL is the seconds between two looks (default 30).
set -eu
source_url=$1
target=$2
mode=${3:-wait}
sync_command=${SYNC_COMMAND:-gsutil -m -q rsync -r}
interval=${SYNC_INTERVAL:-30}
models_config=${MODELS_CONFIG:-/config/models.config}
staging="$target/.staging"
listings="$target/.listings"
mkdir -p "$target" "$staging" "$listings"

served_versions() {
  [ -f "$models_config" ] || return 0
  sed -n 's/^[[:space:]]*versions:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$models_config"
}

missing_versions() {
  wanted=$(served_versions)
  if [ -z "$wanted" ]; then
    ls "$target" | grep -qE '^[0-9]+$' || echo "a first export"
    return 0
  fi
  for version in $wanted; do
    [ -d "$target/$version" ] || echo "$version"
  done
}

listing() {  # file names and sizes of one staged version, one line
  (cd "$1" && find . -type f -exec wc -c {} + | grep -v ' total$' | sort | cksum)
}

publish_if_complete() {
  folder=$1
  version=$2
  now=$(listing "$folder")
  before=$(cat "$listings/$version" 2>/dev/null || true)
  echo "$now" > "$listings/$version"
  [ "$now" = "$before" ] || return 0  # new or still changing: look again next time
  rm -rf "$target/.tmp-$version"
  cp -r "$folder" "$target/.tmp-$version"
  mv "$target/.tmp-$version" "$target/$version"  # atomic: one filesystem
  echo "sync-models: version $version of $source_url is in $target"
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
    publish_if_complete "$folder" "$version"
  done
}

while :; do
  sync_once
  if [ "$mode" = wait ]; then
    missing=$(missing_versions | paste -sd, -)
    [ -z "$missing" ] && exit 0
    echo "sync-models: waiting for $missing under $source_url" >&2
  fi
  sleep "$interval"
done
