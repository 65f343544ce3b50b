"""Every file in serving/ parses as what TensorFlow Serving, Docker and Kubernetes expect, and
the files agree with each other: model name, base path, ports, config paths and mounts, flags,
image version, batch cap, metrics path, probes.

models.config is parsed with tensorflow_serving.config's ModelServerConfig. The pip package
does not ship the BatchingParameters and MonitoringConfig protos, so they are rebuilt here from
TF Serving's .proto files (session_bundle_config.proto, monitoring_config.proto): same package,
message and field names, numbers and types, so text_format rejects any unknown field or bad value.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, \
    wrappers_pb2

from tfemotion.config import ExportConfig, ServingConfig

SERVING = Path(__file__).resolve().parent.parent / "serving"
CONFIG_FLAGS = {"model_config_file": "models.config",
                "batching_parameters_file": "batching.config",
                "monitoring_config_file": "monitoring.config"}


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
        ("pad_variable_length_inputs", F.TYPE_BOOL, None, False)])
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


def test_models_config_serves_two_versions_with_stable_and_canary(models_config):
    model = _model(models_config)
    assert model.name == ServingConfig().name == ExportConfig().name == "emotion"
    assert model.base_path == f"/models/{model.name}" and model.model_platform == "tensorflow"
    versions = list(model.model_version_policy.specific.versions)
    assert len(versions) == 2
    assert dict(model.version_labels) == {"stable": versions[0], "canary": versions[1]}


def test_models_config_is_read_by_the_development_server(tmp_path):
    from tfemotion.modelstore import read_model_config

    policies = read_model_config(SERVING / "models.config", tmp_path)
    assert policies["emotion"].folder == tmp_path / "emotion"
    assert policies["emotion"].select({1, 2, 3}) == {1, 2}


def test_batching_config_is_valid_and_capped_like_the_clients(batching):
    assert batching.max_batch_size.value == ServingConfig().max_batch_size
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(set(sizes)) and sizes[-1] == batching.max_batch_size.value
    assert batching.num_batch_threads.value >= 1 and batching.max_enqueued_batches.value >= 1
    assert batching.HasField("batch_timeout_micros")
    assert batching.pad_variable_length_inputs is False  # pads ids with [CLS]: FIELD-NOTES §6


def test_monitoring_config_enables_prometheus(monitoring):
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path.startswith("/")


def test_compose_runs_the_gpu_image_matching_the_serving_api(compose):
    service = compose["services"]["tfserving"]
    version = metadata.version("tensorflow-serving-api")
    assert service["image"] == f"tensorflow/serving:${{TF_SERVING_VERSION:-{version}}}-gpu"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_compose_flags_ports_and_mounts_agree(compose, models_config, monitoring):
    service = compose["services"]["tfserving"]
    flags = _flags(service["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    assert set(service["ports"]) == {"8500:8500", "8501:8501"}
    mounts = {target: source for source, target, *_ in (v.split(":") for v in service["volumes"])}
    for flag, file in CONFIG_FLAGS.items():
        assert mounts[flags[flag]] == f"./{file}" and (SERVING / file).is_file()
    assert _model(models_config).base_path.startswith(
        next(t for t, s in mounts.items() if s == "./models") + "/")
    assert flags["enable_batching"] == "true" and flags["enable_model_warmup"] == "true"
    health = " ".join(service["healthcheck"]["test"])
    assert "/v1/models/emotion/labels/stable/metadata" in health and "8501" in health
    scrape = yaml.safe_load((SERVING / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == monitoring.prometheus_config.path
    assert scrape["static_configs"][0]["targets"] == ["tfserving:8501"]
    assert compose["services"]["prometheus"]["volumes"][0].startswith("./prometheus.yml:")


def test_kubernetes_runs_the_same_server_as_compose(compose, deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == compose["services"]["tfserving"]["command"]
    version = metadata.version("tensorflow-serving-api")
    assert container["image"] == f"tensorflow/serving:{version}-gpu"
    assert container["command"] == compose["services"]["tfserving"]["entrypoint"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert deployment["spec"]["replicas"] >= 2


def test_kubernetes_mounts_models_and_configs(deployment, kube, models_config):
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in kube
    assert _model(models_config).base_path.startswith(mounts["models"] + "/")
    config_map = volumes["config"]["configMap"]["name"]
    kustomization = yaml.safe_load((SERVING / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["kubernetes.yaml"]
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == config_map
    flags = _flags(container["args"])
    for flag, file in CONFIG_FLAGS.items():
        assert file in generator["files"] and (SERVING / file).is_file()
        assert flags[flag] == f"{mounts['config']}/{file}"


def test_kubernetes_probes_ports_and_services_agree(deployment, kube, models_config,
                                                   monitoring):
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
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
    assert 'version="${TF_SERVING_VERSION:-' + metadata.version("tensorflow-serving-api") in script
    assert '"tensorflow/serving:$version"' in script
    for file in CONFIG_FLAGS.values():
        assert f'-v "$here/{file}:/config/{file}:ro"' in script


def test_readme_covers_gpu_cpu_grpc_rest_and_rollout():
    readme = (SERVING / "README.md").read_text()
    for needed in ("docker-compose.gpu.yml", "run-cpu.sh", "tfemotion serve", "Predict",
                   "Classify", ":predict", ":classify", "canary", "stable", "kubectl apply -k",
                   *CONFIG_FLAGS.values()):
        assert needed in readme, needed
