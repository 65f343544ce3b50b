"""The development server's REST API against TensorFlow Serving's: paths, bodies, errors, and
the README's curl lines and the Kubernetes probes."""

from __future__ import annotations

import base64
import json
import re
import shlex
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import EMOTIONS as LABELS
from support import REPO, publish, write_fake_export
from tfemotion.config import ServingConfig
from tfemotion.serving.server import start_server

MODELS_CONFIG = """model_config_list { config { name: "emotion" base_path: "/models/emotion"
  model_platform: "tensorflow" model_version_policy { specific { versions: 1 versions: 2 } }
  version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }"""


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    base = tmp_path_factory.mktemp("rest-base")
    template = write_fake_export(tmp_path_factory.mktemp("rest-export") / "1")
    publish(template, base, 1)
    publish(template, base, 2)
    config_file = base / "models.config"
    config_file.write_text(MODELS_CONFIG)
    with start_server(base, ServingConfig(port=0, poll_interval=60,
                                          model_config_file=str(config_file))) as server:
        yield server.rest_url


def call(url: str, path: str, body=None, raw: bytes = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_status_of_all_versions_and_of_one(rest):
    status, body = call(rest, "/v1/models/emotion")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("1", "2")]}
    assert call(rest, "/v1/models/emotion/versions/2")[1]["model_version_status"][0]["version"] \
        == "2"


def test_metadata_lists_the_signatures_with_tensor_names(rest):
    status, body = call(rest, "/v1/models/emotion/labels/stable/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "emotion", "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "classify", "tokenize", "encoded", "encoded_int64"} <= set(signatures)
    text = signatures["serving_default"]["inputs"]["text"]
    assert text["dtype"] == "DT_STRING" and text["name"].startswith("serving_default_text")


def test_predict_row_and_columnar_forms_with_b64(rest):
    status, body = call(rest, "/v1/models/emotion:predict",
                        {"instances": ["i am so happy", {"b64": base64.b64encode(b"so sad")
                                                                .decode()}]})
    assert status == 200
    rows = body["predictions"]
    assert [row["label"] for row in rows] == ["joy", "sadness"]
    assert len(rows[0]["probabilities"]) == len(LABELS) and isinstance(rows[0]["label_id"], int)
    status, body = call(rest, "/v1/models/emotion/versions/1:predict",
                        {"signature_name": "serving_default", "inputs": ["i am so happy"]})
    assert status == 200 and body["outputs"]["label"] == ["joy"]
    status, body = call(rest, "/v1/models/emotion:predict",
                        {"signature_name": "encoded",
                         "inputs": {"input_ids": [[5, 7]], "attention_mask": [[1, 1]]}})
    assert status == 200 and set(body["outputs"]) == {"logits", "probabilities"}


def test_classify_with_examples_and_context(rest):
    status, body = call(rest, "/v1/models/emotion/labels/canary:classify",
                        {"signature_name": "classify",
                         "examples": [{"text": "i am so happy"}, {"text": "scared"}]})
    assert status == 200
    results = body["results"]
    assert [label for label, _ in results[0]] == list(LABELS)
    assert max(results[1], key=lambda pair: pair[1])[0] == "fear"
    status, body = call(rest, "/v1/models/emotion:classify",
                        {"signature_name": "classify", "context": {"text": "angry"},
                         "examples": [{}]})
    assert status == 200 and max(body["results"][0], key=lambda pair: pair[1])[0] == "anger"


# (path, body, HTTP status, message). TF Serving 2.20's text, exact, from the source named
# above each group; "..." ends a message whose detail after TF's text is the server's own.
BAD_REQUESTS = [
    # basic_manager.cc ("Servable not found for request: ", ServableRequest::DebugString)
    ("/v1/models/nope:predict", {"instances": ["x"]}, 404,
     "Servable not found for request: Latest(nope)..."),
    ("/v1/models/emotion/versions/9:predict", {"instances": ["x"]}, 404,
     "Servable not found for request: Specific(emotion, 9)..."),
    # server_core.cc, GetModelVersionForLabel
    ("/v1/models/emotion/labels/beta:predict", {"instances": ["x"]}, 400,
     "Unrecognized servable version label: beta"),
    ("/v1/models/nope/labels/beta:predict", {"instances": ["x"]}, 400,
     "Unrecognized servable version label: beta"),
    # http_rest_api_handler.cc, GetInfoMap
    ("/v1/models/emotion:predict", {"signature_name": "nope", "instances": ["x"]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    # json_tensor.cc, FillPredictRequestFromJson
    ("/v1/models/emotion:predict", {"signature_name": "serving_default"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("/v1/models/emotion:predict", {"instances": "x"}, 400,
     'JSON Value: {"instances":"x"} Expecting \'instances\' to be an list/array'),
    ("/v1/models/emotion:predict", {"instances": []}, 400,
     'JSON Value: {"instances":[]} No values in \'instances\' array'),
    ("/v1/models/emotion:predict", {"instances": ["x"], "inputs": ["x"]}, 400,
     'JSON Value: {"instances":["x"],"inputs":["x"]} Not formatted correctly expecting only '
     "one of 'inputs' or 'instances' keys to exist "),
    # json_tensor.cc, FillSignature/FormatSignatureError (http_rest_api_handler_test.cc,
    # "Incorrect signature_name type")
    ("/v1/models/emotion:predict", {"signature_name": 5, "instances": ["x"]}, 400,
     'JSON Value: {"signature_name":5,"instances":["x"]} not formatted correctly. '
     "'signature_name' key must be a string value."),
    # json_tensor.cc, AddValueToTensor's TypeError inside FillTensorMapFromInstancesList
    ("/v1/models/emotion:predict", {"instances": [1.5]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
     "1.5 Type: Number is not of expected type: string"),
    *[("/v1/models/emotion:predict",
       {"signature_name": "encoded", "inputs": {"input_ids": [[5, bad]],
                                                "attention_mask": [[1, 1]]}},
       400, f"JSON Value: {text} Type: {kind} is not of expected type: int32")
      for bad, text, kind in [(True, "true", "True"), (1.7, "1.7", "Number"),
                              ("3", '"3"', "String"), (2 ** 40, "1099511627776", "Number")]],
    # json_tensor.cc, FillClassifyRegressRequestFromJson: the body before the model
    ("/v1/models/nope:classify", {"examples": []}, 400,
     "JSON Value: {\"examples\":[]} 'examples' value is an empty array"),
    ("/v1/models/emotion:classify", {"examples": [{"text": None}]}, 400,
     "Feature: text has element with unexpected JSON type: Null"),
    # regressor.cc, PreProcessRegression: a classifier's signature has several outputs
    ("/v1/models/emotion:regress", {"examples": [{"text": "x"}]}, 400,
     "Expected one output Tensor."),
    ("/v1/models/emotion:regress", {"signature_name": "nope", "examples": [{"text": "x"}]}, 400,
     "No signature was found with the name: nope"),
    # http_rest_api_handler.cc: the verb is compared as written, the path matched whole
    ("/v1/models/emotion:PREDICT", {"instances": ["x"]}, 400,
     "Malformed request: POST /v1/models/emotion:PREDICT"),
    ("/v1/models/emotion:predict?debug=1", {"instances": ["x"]}, 400,
     "Malformed request: POST /v1/models/emotion:predict?debug=1"),
    # get_model_status_impl.cc (a label is not read there: all versions answer)
    ("/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("/v1/models/emotion/versions/987654321", None, 404,
     "Could not find version 987654321 of model emotion"),
    ("/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)..."),
    # the caps TF Serving does not have
    ("/v1/models/emotion:predict", {"instances": ["x"] * 200}, 400,
     "input 'text' holds a batch of 200; the limit is 128..."),
]


@pytest.mark.parametrize("path, body, code, message", BAD_REQUESTS)
def test_bad_requests_get_tf_servings_status_and_error_body(rest, path, body, code, message):
    status, answer = call(rest, path, body)
    assert status == code and set(answer) == {"error"}, answer
    if message.endswith("..."):
        assert answer["error"].startswith(message[:-3]), answer["error"]
    else:
        assert answer["error"] == message


def test_a_status_request_with_a_label_lists_every_version(rest):
    """get_model_status_impl.cc reads a version, never a label."""
    for label in ("stable", "beta"):
        status, body = call(rest, f"/v1/models/emotion/labels/{label}")
        assert status == 200 and [v["version"] for v in body["model_version_status"]] == \
            ["1", "2"]


# Bodies TF Serving's parser takes (json_tensor.cc, ParseJson: rapidjson over a UTF-8 stream that
# skips a byte order mark, stops after the first value, does not validate the encoding) and
# its tensor filling (FindMember: the first of two equal keys; columnar keys beyond the
# signature's inputs not read).
ACCEPTED = {
    "byte order mark": b'\xef\xbb\xbf{"instances": ["i am so happy"]}',
    "trailing data": b'{"instances": ["i am so happy"]} and then some',
    "bytes that are not UTF-8": b'{"instances": ["i am so happy \xff\xfe"]}',
    "duplicate keys, the first wins": b'{"instances": ["i am so happy"], "instances": ["sad"]}',
    "an extra key beside the columnar input": b'{"inputs": {"text": ["i am so happy"], "x": 1}}',
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_valid_bodies_are_answered(rest, case):
    status, body = call(rest, "/v1/models/emotion:predict", raw=ACCEPTED[case])
    assert status == 200, body
    rows = body.get("predictions") or [{"label": body["outputs"]["label"][0]}]
    assert rows[0]["label"] == "joy"


def test_a_gzip_body_is_uncompressed_and_a_broken_one_is_empty(rest):
    """net_http's EvHTTPRequest uncompresses a gzip body; one that fails becomes empty."""
    import gzip

    body = gzip.compress(json.dumps({"instances": ["i am so happy"]}).encode())
    for data, expected in ((body, 200), (b"not gzip", 400)):
        request = urllib.request.Request(rest + "/v1/models/emotion:predict", data=data,
                                         headers={"Content-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read())
        assert status == expected
    assert answer == {"error": "JSON Parse error: The document is empty"}


def test_answers_are_laid_out_and_rounded_as_tf_servings(rest):
    """json_tensor.cc, MakeRowFormatJsonFromTensors with rapidjson's PrettyWriter and
    WriteDecimal: 6 significant digits when they read back as the float32."""
    from tfemotion.serving.tf_json import decimal_text

    request = urllib.request.Request(rest + "/v1/models/emotion:predict",
                                     data=b'{"instances": ["i am so happy", "so sad"]}')
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read().decode()
    assert raw.startswith('{\n    "predictions": [\n        {\n') and raw.endswith("\n    ]\n}")
    numbers = re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?|-?\d+e[-+]\d+", raw)
    assert numbers and all(decimal_text(float(n)) == n for n in numbers), numbers
    error = urllib.request.Request(rest + "/v1/models/emotion:predict", data=b"[1]")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(error, timeout=30)
    assert answer.value.read() == b'{\n    "error": "JSON Value: [1] Is not object"\n}'


def test_malformed_json_and_paths(rest):
    status, answer = call(rest, "/v1/models/emotion:predict", raw=b"{not json")
    assert (status, answer["error"]) == (400, "JSON Parse error: Missing a name for object "
                                              "member. at offset: 1")
    status, answer = call(rest, "/v1/models")  # http_rest_api_handler.cc
    assert (status, answer) == (400, {"error": "Missing model name in request."})
    status, answer = call(rest, "/v1/foo")  # http_rest_api_handler_test.cc, UnsupportedApiCalls
    assert (status, answer) == (400, {"error": "Malformed request: GET /v1/foo"})


@pytest.mark.parametrize("path", ["/v2/models/emotion", "/", "/metrics"])
def test_paths_outside_v1_reach_no_handler(rest, path):
    """http_rest_api_util.h: the dispatcher takes (?i)/v1/.*; evhttp_server.cc answers the rest
    with evhttp_send_error(HTTP_NOTFOUND), libevent's page."""
    status, body = raw_call(rest, "GET", path)
    assert status == 404 and b"<TITLE>404 Not Found</TITLE>" in body


def raw_call(url: str, method: str, path: str, headers=None) -> tuple[int, bytes]:
    import http.client
    from urllib.parse import urlparse

    where = urlparse(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_version_beyond_int64_is_400_without_a_body(rest):
    """http_rest_api_util.cc, ParseModelInfo: absl::SimpleAtoi into int64 fails, and
    ProcessRequest returns before it writes the JSON error."""
    status, body = raw_call(rest, "POST", "/v1/models/emotion/versions/18446744073709551615"
                                          ":predict")
    assert (status, body) == (400, b"")
    status, body = raw_call(rest, "GET", "/v1/models/emotion/versions/9223372036854775807")
    assert status == 404 and b"9223372036854775807" in body  # the largest int64 is a version


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_malformed_requests_with_a_json_error(rest, method):
    """http_rest_api_handler.cc: neither POST nor GET keeps the 'Malformed request' status."""
    status, body = raw_call(rest, method, "/v1/models/emotion")
    assert status == 400
    assert json.loads(body) == {"error": f"Malformed request: {method} /v1/models/emotion"}
    status, body = raw_call(rest, "HEAD", "/v1/models/emotion")
    assert (status, body) == (400, b"")


def test_options_is_a_cors_preflight(rest):
    """http_server.cc: OPTIONS with an http(s) Origin is OK; without one FAILED_PRECONDITION
    ("Origin header is missing in CORS preflight"), neither with a body."""
    assert raw_call(rest, "OPTIONS", "/v1/models/emotion:predict",
                    {"Origin": "https://app.example"}) == (200, b"")
    assert raw_call(rest, "OPTIONS", "/v1/models/emotion:predict") == (400, b"")


@pytest.mark.parametrize("length", ["-5", "lots"])
def test_a_bad_content_length_gets_400_not_a_hang(rest, length):
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(rest)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/models/emotion:predict HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 400") and "Content-Length is not a number" in answer


def _curl_lines(readme: Path) -> list[list[str]]:
    """The curl commands of a README's code blocks (continued lines joined)."""
    text = readme.read_text(encoding="utf-8").replace("\\\n", " ")
    return [shlex.split(line.split("#")[0]) for line in text.splitlines()
            if line.strip().startswith("curl ")]


def test_every_readme_curl_line_works_against_the_development_server(rest):
    lines = _curl_lines(REPO / "serving" / "README.md") + _curl_lines(REPO / "README.md")
    assert len(lines) >= 6
    for words in lines:
        data = words[words.index("-d") + 1].encode() if "-d" in words else None
        url = next(w for w in words if "localhost:8501" in w)
        path = url.split("localhost:8501", 1)[1]
        status, body = call(rest, path, raw=data)
        assert status == 200, (words, body)
        assert "error" not in body


def test_kubernetes_and_compose_probe_paths_answer_200(rest):
    manifest = (REPO / "serving" / "kubernetes.yaml").read_text()
    compose = (REPO / "serving" / "docker-compose.gpu.yml").read_text()
    paths = set(re.findall(r"path: (/v1/\S+)", manifest)) | set(
        re.findall(r"GET (/v1/\S+) HTTP", compose))
    assert {"/v1/models/emotion", "/v1/models/emotion/labels/stable/metadata"} <= paths
    for path in paths:
        assert call(rest, path)[0] == 200, path
