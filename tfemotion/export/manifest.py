"""The export's manifest: every file of a version with its SHA-256, written as its last file.

Whoever copies a version (``serving/sync-models.sh`` from a bucket, a deployment script) can
tell a complete copy from one still under way: a copy is complete when every file the manifest
lists is there with its checksum. An upload may write files in any order, and an object store
shows an object only once its upload is done, so "the same files on two looks" proves nothing.

The file is ``assets.extra/tfemotion.sha256`` in ``sha256sum``'s format, so that a shell checks
it with ``sha256sum -c``, followed by a last line ``# tfemotion manifest: N files``: a manifest
cut short (copied while it was being written) lacks it or counts other lines.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "saved_model.pb"), "wb").write(b"graph")
    >>> _ = write_manifest(folder)
    >>> check_manifest(folder)
    []
    >>> _ = open(os.path.join(folder, "saved_model.pb"), "ab").write(b"+")
    >>> check_manifest(folder)
    ['saved_model.pb: checksum differs']
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from tfemotion.export.signatures import MANIFEST_FILE

_LAST_LINE = re.compile(r"^# tfemotion manifest: (\d+) files$")


def write_manifest(version_dir: Any) -> Path:
    """Write the manifest of every other file of a version folder (atomically); its path."""
    folder = Path(version_dir)
    path = folder / MANIFEST_FILE
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != path
                   and not p.name.startswith(".manifest"))
    lines = [f"{_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(".manifest.tmp")
    temporary.write_text("\n".join(lines + [f"# tfemotion manifest: {len(lines)} files"]) + "\n",
                         encoding="utf-8")
    os.replace(temporary, path)
    return path


def check_manifest(version_dir: Any) -> list[str]:
    """What keeps a copy of a version from being complete (nothing: ``[]``).

    Example:
        >>> check_manifest("/no/such/version")
        ['assets.extra/tfemotion.sha256: no manifest (written last by tfemotion export)']
    """
    folder = Path(version_dir)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return [f"{MANIFEST_FILE.as_posix()}: no manifest (written last by tfemotion export)"]
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    last = _LAST_LINE.match(lines[-1]) if lines else None
    entries = [line.split("  ", 1) for line in lines[:-1]]
    if not last or int(last.group(1)) != len(entries) or any(len(e) != 2 for e in entries):
        return [f"{MANIFEST_FILE.as_posix()}: cut short or not a manifest"]
    problems = []
    for digest, name in entries:
        file = folder / name
        if not file.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(file) != digest:
            problems.append(f"{name}: checksum differs")
    return problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _main(argv: list[str]) -> int:
    """``python -m tfemotion.export.manifest VERSION_DIR...``: write the manifest of versions
    exported before tfemotion wrote one (upload it last)."""
    for folder in argv:
        if not (Path(folder) / "saved_model.pb").is_file():
            print(f"{folder}: not an export version folder (no saved_model.pb)")
            return 1
        print(f"wrote {write_manifest(folder)}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
