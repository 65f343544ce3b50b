#!/bin/sh
# Copy exports from object storage into the model base path that TensorFlow Serving watches.
#
#   sync-models.sh SOURCE TARGET wait   # init container: return once the served versions are there
#   sync-models.sh SOURCE TARGET loop   # sidecar: pick up new versions every SYNC_INTERVAL s
#
# SOURCE is a bucket folder holding VERSION/ exports (gs://bucket/emotion, s3://bucket/emotion),
# TARGET the model's folder (/models/emotion). Each look copies SOURCE into a hidden staging
# folder; a version is renamed into TARGET only once it is provably complete: every file that
# its manifest (assets.extra/tfemotion.sha256, which `tfemotion export` writes last) lists is
# staged with its SHA-256. Uploads write files in any order and pause for as long as they like;
# object stores show a file only once its upload is done: neither matters. TensorFlow Serving
# loads a version as soon as its folder appears, and must never see half of one. A version
# without a manifest (exported before tfemotion wrote one) is never published: the sync says
# so; write one with `python -m tfemotion.export.manifest VERSION_DIR` and upload it last.
#
# "wait" returns once every version that MODELS_CONFIG (default /config/models.config) lists
# under `versions:` is in TARGET (any version, if it lists none), so the server starts with
# what it is told to serve. An empty or unreachable SOURCE is waited for, not an error: the pod
# waits in Init for its first export instead of crash-looping.
#
# Nothing is ever deleted: retiring a version is models.config's job, a version deleted in the
# bucket stays served, and the staging copy stays, so TARGET's disk needs room for the exports
# twice.
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
manifest=assets.extra/tfemotion.sha256
staging="$target/.staging"
mkdir -p "$target" "$staging"

served_versions() {  # every `versions: N` of models.config, one per line, in either form:
  [ -f "$models_config" ] || return 0  # on lines of their own, or `specific { versions: 1 }`
  sed 's/#.*//' "$models_config" | grep -o 'versions[[:space:]]*:[[:space:]]*[0-9][0-9]*' |
    sed 's/[^0-9]*//' || true
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

complete() {  # every file of the folder's manifest is there with its checksum
  file="$1/$manifest"
  [ -f "$file" ] || return 1
  count=$(tail -n 1 "$file" | sed -n 's/^# tfemotion manifest: \([0-9][0-9]*\) files$/\1/p')
  [ -n "$count" ] && [ "$(grep -vc '^#' "$file")" = "$count" ] || return 1  # not cut short
  (cd "$1" && grep -v '^#' "$manifest" | sha256sum -c - >/dev/null 2>&1)
}

publish_if_complete() {
  folder=$1
  version=$2
  if [ ! -f "$folder/$manifest" ]; then
    [ -f "$staging/.no-manifest-$version" ] ||
      echo "sync-models: version $version has no $manifest: not published (see the top of this script)" >&2
    touch "$staging/.no-manifest-$version"
    return 0
  fi
  complete "$folder" || return 0  # still uploading: look again next time
  rm -rf "$target/.tmp-$version"
  cp -r "$folder" "$target/.tmp-$version"
  complete "$target/.tmp-$version" || { rm -rf "$target/.tmp-$version"; return 0; }
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
    publish_if_complete "${folder%/}" "$version"
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
