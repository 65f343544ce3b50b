"""Regenerate ``tfemotion_client/protos`` from TensorFlow Serving's and TensorFlow's protos.

Run from the repository, in a Python with ``grpcio-tools`` (``GRPCIO_TOOLS`` below) and nothing of
TensorFlow's (``make client-protos`` installs one in ``.venv-protoc`` and runs)::

    .venv-protoc/bin/python client/regenerate.py \
        --site-packages .venv-serving/lib/python3.11/site-packages

Where the protos come from: the ``tensorflow-serving-api`` and ``tensorflow`` wheels ship no
``.proto`` files, but every ``*_pb2.py`` module they ship holds its file's compiled
``FileDescriptorProto`` (the ``.proto`` file less its comments). This script reads those bytes out
of the modules' source text (it imports neither TensorFlow nor the modules: the wheels' own
``prediction_service_pb2.py`` and ``model_service_pb2.py`` of 2.20 are written for protobuf 3 and
no longer import), collects the files that ``prediction_service.proto`` and
``model_service.proto`` import, directly or not, and compiles them with ``grpcio-tools``' protoc
(``--descriptor_set_in``). Nothing is fetched from the network.

The generated modules keep the ``.proto`` file names and packages (``tensorflow.TensorProto``,
``tensorflow.serving.PredictRequest``: the names on the wire, in gRPC method paths and in
``google.protobuf.Any`` type URLs) and register them in a descriptor pool of their own
(``tfemotion_client.protos.POOL``), not in protobuf's default pool where TensorFlow registers its
own copies: both live in one process. Their modules move under ``tfemotion_client.protos``
(``tensorflow/core/framework/tensor_pb2.py`` ->
``tfemotion_client/protos/tensorflow/core/framework/tensor_pb2.py``) with their imports rewritten.

Versions: the protos are those of the TF Serving release in ``serving/.env`` (the server the
client talks to in production), read from the wheels of that release (``make serving-env``
installs them in ``.venv-serving``). ``grpcio-tools`` is pinned (``GRPCIO_TOOLS`` below) so that
the generated code is no newer than the oldest protobuf runtime the client's ``pyproject.toml``
accepts.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# protoc 25.1: gencode of protobuf 4.25.1, the last without a runtime version check, which
# protobuf 4.25 to 7.x runtimes load (measured with upb and pure Python: client/README.md): the
# client then installs beside every TensorFlow tfemotion supports, 2.16 (protobuf < 5) to 2.21
# (protobuf >= 6.31.1). Its own requirement is protobuf < 5: make client-protos installs it in a
# venv of its own (.venv-protoc), never in .venv.
GRPCIO_TOOLS = "1.62.3"
# The services the client calls; every file they import comes along.
SERVICES = ("tensorflow_serving/apis/prediction_service.proto",
            "tensorflow_serving/apis/model_service.proto")
# Top-level packages of the wheels' protos, moved under PACKAGE.
SOURCE_PACKAGES = ("tensorflow_serving", "tensorflow", "xla")
PACKAGE = "tfemotion_client.protos"
HERE = Path(__file__).resolve().parent
TARGET = HERE / "tfemotion_client" / "protos"
REPOSITORY_ENV = HERE.parent / "serving" / ".env"


# region Reading the wheels


def serialized_files(site_packages: Path) -> dict[str, bytes]:
    """Every ``FileDescriptorProto`` the ``*_pb2.py`` modules of the wheels under
    ``site_packages`` hold, by ``.proto`` file name, read off their source text.

    Raises:
        ValueError: two modules hold different descriptors for one file name.
    """
    from google.protobuf import descriptor_pb2

    found: dict[str, bytes] = {}
    for package in ("tensorflow_serving", "tensorflow"):
        for path in sorted((site_packages / package).rglob("*_pb2.py")):
            data = _serialized_descriptor(path)
            if data is None:
                continue
            name = descriptor_pb2.FileDescriptorProto.FromString(data).name
            if found.setdefault(name, data) != data:
                raise ValueError(f"{path}: a second, different descriptor of {name}. "
                                 f"Received: site_packages={str(site_packages)!r}")
    return found


def _serialized_descriptor(path: Path) -> bytes | None:
    """The serialized file descriptor a generated module registers, or None: the argument of
    ``AddSerializedFile(b'...')`` (protobuf >= 3.20 gencode) or the ``serialized_pb`` of
    ``_descriptor.FileDescriptor(...)`` (older gencode, as ``_b('...')`` or bytes)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "AddSerializedFile" and node.args:
            return ast.literal_eval(node.args[0])
        if node.func.attr == "FileDescriptor":
            value = {k.arg: k.value for k in node.keywords}.get("serialized_pb")
            if isinstance(value, ast.Call):  # _b('...'): a str of latin-1 bytes
                return ast.literal_eval(value.args[0]).encode("latin-1")
            if value is not None:
                return ast.literal_eval(value)
    return None


def closure(files: dict[str, bytes], roots: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(the wheels' files ``roots`` need, in dependency order; the ``google/protobuf`` files
    among them, which the protobuf runtime ships).

    Raises:
        ValueError: a file that no wheel holds.
    """
    from google.protobuf import descriptor_pb2

    ordered: list[str] = []
    well_known: list[str] = []

    def visit(name: str, importer: str) -> None:
        if name in ordered or name in well_known:
            return
        if name.startswith("google/protobuf/"):
            well_known.append(name)
            return
        if name not in files:
            raise ValueError(f"{importer} imports {name}, which no installed wheel holds. "
                             f"Received: file={name!r}")
        for dependency in descriptor_pb2.FileDescriptorProto.FromString(files[name]).dependency:
            visit(dependency, name)
        ordered.append(name)

    for root in roots:
        visit(root, "the client")
    return ordered, sorted(well_known)


def installed_version(site_packages: Path, distribution: str) -> str:
    """The version of ``distribution`` installed under ``site_packages``.

    Raises:
        ValueError: it is not installed there.
    """
    for found in importlib.metadata.distributions(path=[str(site_packages)]):
        if found.metadata["Name"].lower().replace("_", "-") == distribution:
            return found.version
    raise ValueError(f"{distribution} is not installed in {site_packages} (make serving-env "
                     f"installs the release's wheels in .venv-serving). "
                     f"Received: site_packages={str(site_packages)!r}")


# endregion
# region Compiling and moving into the package


def compile_protos(files: dict[str, bytes], names: list[str], well_known: list[str],
                   output: Path) -> None:
    """Run grpcio-tools' protoc on ``names`` (messages; gRPC stubs for the services), with the
    ``well_known`` files they import from this Python's protobuf."""
    import importlib

    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    descriptor_set = descriptor_pb2.FileDescriptorSet()
    for name in well_known:
        module = importlib.import_module(_well_known_module(name))
        descriptor_set.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
    for name in names:
        descriptor_set.file.add().ParseFromString(files[name])
    set_path = output / "descriptors.pb"
    set_path.write_bytes(descriptor_set.SerializeToString())
    for flags, chosen in ((["--python_out", str(output)], names),
                          (["--grpc_python_out", str(output)], list(SERVICES))):
        code = protoc.main(["protoc", f"--descriptor_set_in={set_path}", *flags, *chosen])
        if code != 0:
            raise RuntimeError(f"protoc failed (exit {code}) on {chosen}")
    set_path.unlink()


def _well_known_module(name: str) -> str:
    """``google/protobuf/any.proto`` -> ``google.protobuf.any_pb2``."""
    return name.removesuffix(".proto").replace("/", ".") + "_pb2"


# `from tensorflow.core.framework import tensor_pb2 as ...`, and `from x.y_pb2 import *` for a
# `import public`.
_IMPORT = re.compile(r"^from ((?:%s)(?:\.\w+)*) import (\w+_pb2 as \w+|\*)$"
                     % "|".join(SOURCE_PACKAGES), re.MULTILINE)
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')((?:%s)\.[\w.]+')"
                          % "|".join(SOURCE_PACKAGES))
_DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("


def rewrite(source: str, header: str, registers: bool = True) -> str:
    """Move a generated module into ``PACKAGE``: its imports of other generated modules, its
    module name, and its descriptor pool (``PACKAGE``'s, not protobuf's default one).

    Args:
        source: str. A module protoc wrote.
        header: str. Comment lines to put first.
        registers: bool. Whether the module registers a file (``*_pb2``; ``*_pb2_grpc`` not).

    Raises:
        ValueError: the generated code does not look as expected (another protoc version).

    Example:
        >>> rewrite("from tensorflow.core.framework import types_pb2 as t\\n", "# h", False)
        '# h\\nfrom tfemotion_client.protos.tensorflow.core.framework import types_pb2 as t\\n'
    """
    source = _IMPORT.sub(lambda m: f"from {PACKAGE}.{m[1]} import {m[2]}", source)
    source = _MODULE_NAME.sub(lambda m: f"{m[1]}{PACKAGE}.{m[2]}", source)
    pools = source.count(_DEFAULT_POOL)
    if pools != int(registers):
        raise ValueError(f"expected {int(registers)} {_DEFAULT_POOL!r} in a generated module. "
                         f"Received: {pools}")
    source = source.replace("from google.protobuf import descriptor_pool as _descriptor_pool\n",
                            f"from {PACKAGE} import POOL as _POOL\n")
    source = source.replace(_DEFAULT_POOL, "_POOL.AddSerializedFile(")
    leftover = re.search(r"^(?:from|import) (?:%s)\b.*$" % "|".join(SOURCE_PACKAGES), source,
                         re.MULTILINE)
    if leftover:
        raise ValueError(f"an import left outside {PACKAGE}. Received: {leftover[0]!r}")
    return f"{header}\n{source}"


def package_init(well_known: list[str], provenance: str) -> str:
    """The text of ``protos/__init__.py``: the descriptor pool, with the well-known files the
    generated ones import."""
    modules = [_well_known_module(name).rsplit(".", 1)[1] for name in well_known]
    tuple_text = f"({', '.join(modules)}{',' if len(modules) == 1 else ''})"
    return f'''"""TF Serving's request, response and service messages, generated: do not edit.

{provenance}

They are registered in ``POOL``, a descriptor pool of their own, under TF Serving's names
(``tensorflow.serving.PredictRequest``): TensorFlow registers its copies of the same files in
protobuf's default pool, and both can be imported in one process. Messages of the two pools do not
mix (``CopyFrom`` refuses); their bytes do (``SerializeToString``, ``FromString``).
"""

from google.protobuf import descriptor_pool, message_factory
from google.protobuf import {", ".join(modules)}

POOL = descriptor_pool.DescriptorPool()
for _module in {tuple_text}:
    POOL.AddSerializedFile(_module.DESCRIPTOR.serialized_pb)
# Their classes in this pool (protobuf's pure-Python runtime makes them only when asked).
message_factory.GetMessageClassesForFiles(
    {well_known!r}, POOL)
'''


def write_package(generated: Path, target: Path, well_known: list[str], provenance: str) -> int:
    """Write the rewritten modules in a new folder, then swap it for ``target``.

    Returns:
        The number of modules written.
    """
    staging = Path(tempfile.mkdtemp(prefix=".protos-", dir=target.parent))
    count = 0
    try:
        header = "\n".join(f"# {line}".rstrip() for line in provenance.splitlines())
        for path in sorted(generated.rglob("*.py")):
            relative = path.relative_to(generated)
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = rewrite(path.read_text(encoding="utf-8"), header,
                             registers=not path.name.endswith("_pb2_grpc.py"))
            destination.write_text(source, encoding="utf-8")
            count += 1
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            init = folder / "__init__.py"
            if not init.exists():
                init.write_text("")
        (staging / "__init__.py").write_text(package_init(well_known, provenance),
                                             encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


# endregion


def _release() -> str | None:
    if REPOSITORY_ENV.is_file():
        for line in REPOSITORY_ENV.read_text(encoding="utf-8").splitlines():
            if line.startswith("TF_SERVING_VERSION="):
                return line.split("=", 1)[1].strip()
    return None


def _check_grpcio_tools() -> str:
    try:
        version = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != GRPCIO_TOOLS:
        raise SystemExit(f"regenerate.py needs grpcio-tools=={GRPCIO_TOOLS} in this Python "
                         f"({sys.executable}): pip install grpcio-tools=={GRPCIO_TOOLS}. "
                         f"Received: grpcio-tools {version}")
    return version


def main(argv: list[str] | None = None) -> int:
    """Regenerate the protos; print what was read and written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site-packages", type=Path, required=True,
                        help="site-packages folder holding tensorflow-serving-api and tensorflow "
                             "of the release (e.g. .venv-serving/lib/python3.11/site-packages)")
    parser.add_argument("--release", default=_release(),
                        help="TF Serving release the wheels must be (default: serving/.env's "
                             "TF_SERVING_VERSION)")
    args = parser.parse_args(argv)
    tools = _check_grpcio_tools()
    site = args.site_packages.resolve()
    serving_api = installed_version(site, "tensorflow-serving-api")
    tensorflow = installed_version(site, "tensorflow")
    if args.release and serving_api != args.release:
        raise SystemExit(f"{site} holds tensorflow-serving-api {serving_api}, not the release "
                         f"{args.release}. Received: --release {args.release}")
    files = serialized_files(site)
    names, well_known = closure(files, SERVICES)
    from grpc_tools import protoc

    protoc_version = getattr(protoc, "__version__", None) or _protoc_version()
    provenance = (f"Generated by client/regenerate.py from the compiled protos in the wheels of\n"
                  f"tensorflow-serving-api {serving_api} and tensorflow {tensorflow}, with "
                  f"grpcio-tools {tools} ({protoc_version}).")
    with tempfile.TemporaryDirectory() as temporary:
        compile_protos(files, names, well_known, Path(temporary))
        count = write_package(Path(temporary), TARGET, well_known, provenance)
    print(f"{len(names)} proto files (+ {', '.join(well_known)} from protobuf) from "
          f"tensorflow-serving-api {serving_api} and tensorflow {tensorflow}: {count} modules "
          f"in {TARGET.relative_to(HERE)}")
    return 0


def _protoc_version() -> str:
    result = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "--version"],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
