"""Every file in serving/ parses as what TensorFlow Serving, Docker and Kubernetes expect, and
the files agree with each other: model name, base path, ports, config paths and mounts, flags,
image version, batch cap, metrics path, probes.

models.config is parsed with tensorflow_serving.config's ModelServerConfig. The pip package
does not ship the BatchingParameters and MonitoringConfig protos, so they are rebuilt here from
TF Serving's .proto files (session_bundle_config.proto, monitoring_config.proto): same package,
message and field names, numbers and types, so text_format rejects any unknown field or bad value.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, \
    wrappers_pb2

from support import REPO, wait_until

from tfemotion.config import ExportConfig, ServingConfig

SERVING = REPO / "serving"
CONFIG_FLAGS = {"model_config_file": "models.config",
                "batching_parameters_file": "batching.config",
                "monitoring_config_file": "monitoring.config",
                "tensorflow_session_config_file": "session.config"}


# region protos missing from the pip package
def _serving_protos():
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="tfemotion_test/serving_configs.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])

    def message(name, fields):
        m = file.message_type.add(name=name)
        for number, (field, kind, type_name, repeated) in enumerate(fields, 1):
            m.field.add(name=field, number=number, type=kind, type_name=type_name,
                        label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)

    int64 = (F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False)
    message("BatchingParameters", [
        ("max_batch_size", *int64), ("batch_timeout_micros", *int64),
        ("max_enqueued_batches", *int64), ("num_batch_threads", *int64),
        ("thread_pool_name", F.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
        ("allowed_batch_sizes", F.TYPE_INT64, None, True),
        ("pad_variable_length_inputs", F.TYPE_BOOL, None, False),
        ("enable_large_batch_splitting", F.TYPE_MESSAGE, ".google.protobuf.BoolValue", False),
        ("max_execution_batch_size", *int64)])
    message("PrometheusConfig", [("enable", F.TYPE_BOOL, None, False),
                                 ("path", F.TYPE_STRING, None, False)])
    message("MonitoringConfig", [("prometheus_config", F.TYPE_MESSAGE,
                                  ".tensorflow.serving.PrometheusConfig", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(file)
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")}
# endregion


@pytest.fixture(scope="module")
def models_config():
    from tensorflow_serving.config import model_server_config_pb2

    text = (SERVING / "models.config").read_text()
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


@pytest.fixture(scope="module")
def batching():
    cls = _serving_protos()["BatchingParameters"]
    return text_format.Parse((SERVING / "batching.config").read_text(), cls())


@pytest.fixture(scope="module")
def monitoring():
    cls = _serving_protos()["MonitoringConfig"]
    return text_format.Parse((SERVING / "monitoring.config").read_text(), cls())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((SERVING / "docker-compose.gpu.yml").read_text())


@pytest.fixture(scope="module")
def kube():
    documents = [d for d in yaml.safe_load_all((SERVING / "kubernetes.yaml").read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


@pytest.fixture(scope="module")
def deployment(kube):
    return kube[("Deployment", "tfserving-emotion")]


def _flags(args):
    return dict(re.fullmatch(r"--([a-z_]+)=(.*)", a).groups() for a in args)


def _model(models_config):
    (model,) = models_config.model_config_list.config
    return model


def test_proto_stand_ins_reject_unknown_fields():
    with pytest.raises(text_format.ParseError, match="max_batch_sise"):
        text_format.Parse("max_batch_sise { value: 8 }", _serving_protos()["BatchingParameters"]())


def test_models_config_serves_the_version_make_run_exports_as_stable(models_config):
    model = _model(models_config)
    assert model.name == ServingConfig().name == ExportConfig().name == "emotion"
    assert model.base_path == f"/models/{model.name}" and model.model_platform == "tensorflow"
    assert list(model.model_version_policy.specific.versions) == [1]  # what make run writes
    assert dict(model.version_labels) == {"stable": 1}


def test_models_config_is_read_by_the_development_server(tmp_path):
    from tfemotion.serving.modelstore import read_model_config

    policies = read_model_config(SERVING / "models.config", tmp_path)
    assert policies["emotion"].folder == tmp_path / "emotion"
    assert policies["emotion"].select({1, 2, 3}) == {1}


def test_batching_config_is_valid_and_capped_like_the_clients(batching):
    assert batching.max_batch_size.value == ServingConfig().max_batch_size
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(set(sizes)) and sizes[-1] == batching.max_batch_size.value
    assert batching.num_batch_threads.value >= 1 and batching.max_enqueued_batches.value >= 1
    assert batching.HasField("batch_timeout_micros")
    # TF Serving pads with the tensor's first element: input_ids with [CLS], the mask with 1
    assert batching.pad_variable_length_inputs is False


def test_exports_warm_up_every_batch_size_the_gpu_config_allows(batching):
    assert ExportConfig().warmup_batch_sizes == (1, *batching.allowed_batch_sizes)


def test_monitoring_config_enables_prometheus(monitoring):
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path.startswith("/")


def _env() -> dict[str, str]:
    lines = (SERVING / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_one_place_names_a_tf_serving_release_that_exists_and_the_model_base_path():
    from tfemotion.colab import MODEL_SERVER_RELEASES

    env = _env()
    assert env["TF_SERVING_VERSION"] in MODEL_SERVER_RELEASES.values()  # tensorflow/serving tags
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": "tensorflow/serving",
                                        "newTag": f"{env['TF_SERVING_VERSION']}-gpu"}]
    # The base path is where `make run` exports: OUT/serving with the Makefile's default OUT.
    makefile = (SERVING.parent / "Makefile").read_text()
    out = re.search(r"^OUT\s*\?=\s*(\S+)", makefile, re.M).group(1)
    assert (SERVING / env["MODELS"]).resolve() == (SERVING.parent / out / "serving").resolve()
    assert not re.search(r"tensorflow/serving:\d", (SERVING / "kubernetes.yaml").read_text()
                         + (SERVING / "docker-compose.gpu.yml").read_text()
                         + (SERVING / "run-cpu.sh").read_text())  # no tag written elsewhere


def test_compose_runs_the_gpu_image_of_the_release_on_the_exports(compose):
    service = compose["services"]["tfserving"]
    assert service["image"] == "tensorflow/serving:${TF_SERVING_VERSION:?set in serving/.env}-gpu"
    assert "${MODELS:?set in serving/.env}:/models:ro" in service["volumes"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_compose_flags_ports_and_mounts_agree(compose, models_config, monitoring):
    service = compose["services"]["tfserving"]
    flags = _flags(service["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    assert set(service["ports"]) == {"8500:8500", "8501:8501"}
    mounts = {target: source for source, target, _ in (v.rsplit(":", 2) for v in service["volumes"])}
    for flag, file in CONFIG_FLAGS.items():
        assert mounts[flags[flag]] == f"./{file}" and (SERVING / file).is_file()
    assert _model(models_config).base_path.startswith(
        next(t for t, s in mounts.items() if s.startswith("${MODELS")) + "/")
    assert flags["enable_batching"] == "true" and flags["enable_model_warmup"] == "true"
    health = " ".join(service["healthcheck"]["test"])
    assert "/v1/models/emotion/labels/stable/metadata" in health and "8501" in health
    scrape = yaml.safe_load((SERVING / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == monitoring.prometheus_config.path
    assert scrape["static_configs"][0]["targets"] == ["tfserving:8501"]
    assert compose["services"]["prometheus"]["volumes"][0].startswith("./prometheus.yml:")


def _containers(deployment) -> dict:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_kubernetes_runs_the_same_server_as_compose(compose, deployment):
    container = _containers(deployment)["tfserving"]
    assert container["args"] == compose["services"]["tfserving"]["command"]
    assert container["image"].split()[0] == "tensorflow/serving"  # tag from kustomize images:
    assert container["command"] == compose["services"]["tfserving"]["entrypoint"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert deployment["spec"]["replicas"] >= 2


def test_kubernetes_fills_each_pod_from_object_storage_before_the_server_starts(deployment,
                                                                              models_config):
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["models"]  # no storage class, no shared claim
    (fetch,) = pod["initContainers"]
    sync = _containers(deployment)["sync-models"]
    base = _model(models_config).base_path
    assert fetch["command"] == ["sh", "/config/sync-models.sh", "$(MODEL_SOURCE)", base, "wait"]
    assert sync["command"] == ["sh", "/config/sync-models.sh", "$(MODEL_SOURCE)", base, "loop"]
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    assert "sync-models.sh" in generators["tfserving-config"]["files"]
    assert generators["model-source"]["literals"][0].startswith("MODEL_SOURCE=gs://")
    for container in (fetch, sync):
        assert container["envFrom"] == [{"configMapRef": {"name": "model-source"}}]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"models": "/models", "config": "/config"}


def test_kubernetes_mounts_models_and_configs(deployment, kube, models_config):
    pod = deployment["spec"]["template"]["spec"]
    container = _containers(deployment)["tfserving"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert _model(models_config).base_path.startswith(mounts["models"] + "/")
    config_map = volumes["config"]["configMap"]["name"]
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["kubernetes.yaml"]
    generator = next(g for g in kustomization["configMapGenerator"] if g["name"] == config_map)
    flags = _flags(container["args"])
    for flag, file in CONFIG_FLAGS.items():
        assert file in generator["files"] and (SERVING / file).is_file()
        assert flags[flag] == f"{mounts['config']}/{file}"


def test_kubernetes_probes_ports_and_services_agree(deployment, kube, models_config,
                                                   monitoring):
    template = deployment["spec"]["template"]
    container = _containers(deployment)["tfserving"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    flags = _flags(container["args"])
    assert ports == {"grpc": int(flags["port"]), "http": int(flags["rest_api_port"])}
    model = _model(models_config)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http" and get["path"].startswith(f"/v1/models/{model.name}")
    label = container["readinessProbe"]["httpGet"]["path"].split("/labels/")[1].split("/")[0]
    assert label in model.version_labels
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == monitoring.prometheus_config.path
    assert annotations["prometheus.io/port"] == str(ports["http"])
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert template["metadata"]["labels"] == selector
    for name in ("tfserving-emotion", "tfserving-emotion-headless"):
        service = kube[("Service", name)]["spec"]
        assert service["selector"] == selector
        for port in service["ports"]:
            assert port["targetPort"] in ports and port["port"] == ports[port["targetPort"]]


def test_cpu_script_uses_the_same_flags_and_files(compose):
    script = (SERVING / "run-cpu.sh").read_text()
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(SERVING / "run-cpu.sh")], check=True)
    flags = re.findall(r"^\s*(--[a-z_]+=\S+)(?: \\)?$", script, flags=re.M)
    assert flags == compose["services"]["tfserving"]["command"]
    assert 'done < "$here/.env"' in script and 'version="$TF_SERVING_VERSION"' in script
    assert '"tensorflow/serving:$version"' in script and '-v "$models:/models:ro"' in script
    for file in CONFIG_FLAGS.values():
        local = "$batching" if file == "batching.config" else file  # the CPU choices
        assert f'-v "$here/{local}:/config/{file}:ro"' in script
    assert 'batching="${BATCHING_CONFIG:-batching-cpu.config}"' in script


@pytest.mark.parametrize("name", ["batching-cpu.config", "batching-cpu-throughput.config"])
def test_cpu_batching_configs_are_valid_without_padding_shapes(name):
    from tfemotion.serving.batching import BatchingParameters

    cls = _serving_protos()["BatchingParameters"]
    cpu = text_format.Parse((SERVING / name).read_text(), cls())  # TF Serving's own parser
    assert cpu.max_batch_size.value == ServingConfig().max_batch_size
    assert list(cpu.allowed_batch_sizes) == [] and cpu.pad_variable_length_inputs is False
    ours = BatchingParameters.read(SERVING / name)  # and the development server's
    assert ours.execution_batch_size == (cpu.max_execution_batch_size.value
                                         if cpu.enable_large_batch_splitting.value
                                         else cpu.max_batch_size.value)
    assert ours.batch_timeout_micros == cpu.batch_timeout_micros.value


def test_run_cpu_sh_refuses_a_batching_file_that_does_not_exist(tmp_path):
    if not shutil.which("bash"):
        pytest.skip("needs bash")
    done = subprocess.run(["bash", str(SERVING / "run-cpu.sh")], capture_output=True, text=True,
                          env={**os.environ, "BATCHING_CONFIG": "nope.config",
                               "MODELS": str(tmp_path)}, timeout=60)
    assert done.returncode == 1 and "BATCHING_CONFIG=nope.config: no such file" in done.stderr


def test_session_config_parses_and_turns_the_function_optimizer_off():
    from tensorflow.core.protobuf import rewriter_config_pb2

    from tfemotion.export.servable import read_session_config

    config = read_session_config(SERVING / "session.config")
    rewrite = config.graph_options.rewrite_options
    assert rewrite.function_optimization == rewriter_config_pb2.RewriterConfig.OFF
    assert config.intra_op_parallelism_threads == config.inter_op_parallelism_threads == 0


def test_a_bad_session_config_names_the_file_and_line(tmp_path):
    from tfemotion.export.servable import read_session_config

    bad = tmp_path / "session.config"
    bad.write_text("graph_options {\n  rewrite_options { funktion_optimization: OFF }\n}\n")
    with pytest.raises(ValueError, match=r"session.config, line 2: .*funktion_optimization"):
        read_session_config(bad)
    with pytest.raises(ValueError, match="Cannot read the session config"):
        read_session_config(tmp_path / "missing.config")


def test_readme_covers_gpu_cpu_grpc_rest_and_rollout():
    readme = (SERVING / "README.md").read_text()
    for needed in ("docker-compose.gpu.yml", "run-cpu.sh", "tfemotion serve", "Predict",
                   "Classify", ":predict", ":classify", "canary", "stable", "kubectl apply -k",
                   *CONFIG_FLAGS.values()):
        assert needed in readme, needed


def _run_sync(source: Path, target: Path, mode: str, models_config: Path | None = None,
              sync_command: str = "cp -rT") -> subprocess.Popen:
    """sync-models.sh in the background; its SYNC_COMMAND also counts the looks it begins
    (``_two_looks``)."""
    looks = target.parent / f".looks-{mode}"
    counting = target.parent / ".count-looks.sh"
    target.parent.mkdir(parents=True, exist_ok=True)
    counting.write_text('echo >> "$SYNC_LOOKS"\nexec "$@"\n')
    env = {"PATH": "/usr/bin:/bin", "SYNC_COMMAND": f"sh {counting} {sync_command}",
           "SYNC_INTERVAL": "0.2", "SYNC_LOOKS": str(looks),
           "MODELS_CONFIG": str(models_config or "/nonexistent/models.config")}
    process = subprocess.Popen(["sh", str(SERVING / "sync-models.sh"), str(source), str(target),
                                mode], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.looks = looks
    return process


def _two_looks(sync: subprocess.Popen) -> None:
    """Wait until the sync began two more looks: the first of them began after this call, and
    had finished (copied, checked, published) before the second began. What a look must not
    have done, it has then had its chance to do. Returns early if the sync exits."""

    def looks() -> int:
        return len(sync.looks.read_text().splitlines()) if sync.looks.exists() else 0

    begun = looks()
    wait_until(lambda: looks() >= begun + 2 or sync.poll() is not None)


def _built_export(folder: Path) -> Path:
    """A version folder as `tfemotion export` leaves it: files, then the manifest."""
    from tfemotion.export.manifest import write_manifest

    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text("index " * 3)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"w" * 10_000)
    (folder / "saved_model.pb").write_text("graph")
    write_manifest(folder)
    return folder


def _upload(export: Path, version_dir: Path, order=None, before_each=None) -> None:
    """Copy an export's files into the bucket one by one, in ``order`` (default: as listed),
    calling ``before_each()`` before each (a pause of an upload under way, as an object store
    shows it)."""
    import shutil

    files = [p.relative_to(export) for p in sorted(export.rglob("*")) if p.is_file()]
    for relative in (order(files) if order else files):
        if before_each:
            before_each()
        (version_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        partial = version_dir / relative.parent / f".part-{relative.name}"
        shutil.copyfile(export / relative, partial)
        partial.rename(version_dir / relative)  # an object appears whole, once uploaded


def _same_files(a: Path, b: Path) -> bool:
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    return files(a) == files(b)


@pytest.fixture
def built(tmp_path):
    return _built_export(tmp_path / "built")


def test_sync_script_waits_for_a_first_export_then_publishes_whole_versions(tmp_path, built):
    """The init container's loop, with `cp` standing in for gsutil: an empty bucket is waited
    for (no crash loop), a version appears in the model folder only complete, by rename."""
    source, target = tmp_path / "bucket", tmp_path / "models" / "emotion"
    source.mkdir()
    waiting = _run_sync(source, target, "wait")
    _two_looks(waiting)
    assert waiting.poll() is None  # still waiting, not failed
    assert sorted(p.name for p in target.iterdir()) == [".staging"]
    (source / "1").mkdir()  # a version being uploaded: no saved_model.pb yet
    _two_looks(waiting)
    assert not (target / "1").exists()
    _upload(built, source / "2")
    assert waiting.wait(timeout=20) == 0, waiting.stderr.read()
    assert sorted(p.name for p in target.iterdir()) == [".staging", "2"]
    assert _same_files(built, target / "2")
    assert "waiting for a first export" in waiting.stderr.read()

    looping = _run_sync(source, target, "loop")
    try:
        _upload(built, source / "3")
        wait_until((target / "3" / "saved_model.pb").exists)
        assert _same_files(built, target / "3")
        assert not any(p.name.startswith(".tmp-") for p in target.iterdir())
    finally:
        looping.kill()


@pytest.mark.parametrize("order", ["manifest first", pytest.param(
    "graph first, manifest last", marks=pytest.mark.integration)])  # make check: one order
def test_sync_script_never_publishes_an_upload_still_under_way(tmp_path, built, order):
    """Files arrive in any order with looks of the sync between them (a large variables
    shard takes minutes and shows only when done): the version is published only once every
    file of its manifest is there with its checksum."""
    import threading

    source, target = tmp_path / "bucket", tmp_path / "models" / "emotion"
    source.mkdir()
    first = "assets.extra" if order == "manifest first" else "saved_model.pb"
    looping = _run_sync(source, target, "loop")
    uploader = threading.Thread(target=_upload, args=(built, source / "1"), kwargs={
        "order": lambda files: sorted(files, key=lambda f: (not str(f).startswith(first),
                                                             str(f))),
        "before_each": lambda: _two_looks(looping)})  # every state of the upload is looked at
    try:
        uploader.start()
        while uploader.is_alive():
            assert not (target / "1").exists()
            uploader.join(timeout=0.05)
        wait_until((target / "1").exists)
        assert _same_files(built, target / "1")
    finally:
        looping.kill()


def test_a_version_without_a_manifest_is_never_published_and_the_sync_says_why(tmp_path,
                                                                              built):
    import shutil

    source, target = tmp_path / "bucket", tmp_path / "models" / "emotion"
    shutil.copytree(built, source / "1")
    (source / "1" / "assets.extra" / "tfemotion.sha256").unlink()  # exported before manifests
    _upload(built, source / "2")
    looping = _run_sync(source, target, "loop")
    try:
        wait_until((target / "2").exists)
        _two_looks(looping)
        assert not (target / "1").exists()
    finally:
        looping.kill()
    errors = looping.stderr.read()
    assert errors.count("version 1 has no assets.extra/tfemotion.sha256: not published") == 1


@pytest.mark.integration  # seconds of a looping sync process
def test_a_version_deleted_in_the_bucket_stays_served(tmp_path, built):
    import shutil

    source, target = tmp_path / "bucket", tmp_path / "models" / "emotion"
    mirror = tmp_path / "mirror.sh"  # a sync that deletes what the bucket no longer has
    mirror.write_text('rm -rf "$2"/[0-9]*; cp -rT "$1" "$2"\n')
    _upload(built, source / "1")
    looping = _run_sync(source, target, "loop", sync_command=f"sh {mirror}")
    try:
        wait_until((target / "1").exists)
        shutil.rmtree(source / "1")
        _upload(built, source / "2")
        wait_until((target / "2").exists)
        assert _same_files(built, target / "1")
    finally:
        looping.kill()


def test_an_unreachable_source_is_waited_for_with_a_message(tmp_path):
    target = tmp_path / "models" / "emotion"
    waiting = _run_sync(tmp_path / "no-bucket", target, "wait", sync_command="false")
    _two_looks(waiting)
    assert waiting.poll() is None
    waiting.kill()
    assert "cannot read" in waiting.stderr.read()


@pytest.mark.parametrize("form", ["lines of their own", "one line, as TF Serving's docs"])
def test_sync_script_waits_for_every_version_models_config_serves(tmp_path, built, form):
    """The init container returns only once the versions models.config lists are there: a
    pod must not start serving while its `stable` version is still missing."""

    source, target = tmp_path / "bucket", tmp_path / "models" / "emotion"
    models_config = tmp_path / "models.config"
    text = (SERVING / "models.config").read_text()
    if form == "lines of their own":
        text = text.replace("versions: 1", "versions: 1\n        versions: 2")
    else:
        policy = text[text.index("model_version_policy"):]
        policy = policy[: policy.index("}\n    }") + len("}\n    }")]
        text = text.replace(policy, "model_version_policy { specific { versions: 1 "
                                    "versions: 2 } }")
    assert "versions: 2" in text
    models_config.write_text(text)
    _upload(built, source / "1")
    waiting = _run_sync(source, target, "wait", models_config)
    wait_until((target / "1").exists)
    _two_looks(waiting)
    assert waiting.poll() is None  # version 2 is listed and missing
    _upload(built, source / "2")
    assert waiting.wait(timeout=20) == 0, waiting.stderr.read()
    assert "waiting for 2 under" in waiting.stderr.read()
