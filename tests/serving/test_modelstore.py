"""Versions picked up, unloaded and labelled as TF Serving does, without a restart."""

from __future__ import annotations

import logging
import shutil

from support import publish, wait_until, write_fake_export

from tfemotion.config import ServingConfig
from tfemotion.serving.server import start_server
from tfemotion.serving.client import ServingClient


MODEL_CONFIG = """
model_config_list {
  config {
    name: "emotion"
    base_path: "/models/emotion"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: %d }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def test_devserver_picks_up_a_new_version_without_restart(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    config = ServingConfig(port=0, poll_interval=0.1)
    with start_server(tmp_path, config) as server, ServingClient(server.address) as client:
        assert client.predict(["so happy"])[0].version == 1
        publish(fake_export, tmp_path, 2)
        # Version 2 answers once it is AVAILABLE; version 1 is unloaded after that.
        wait_until(lambda: [(s["version"], s["state"]) for s in client.status()] == [
            (1, "END"), (2, "AVAILABLE")])
        assert client.predict(["so happy"])[0].version == 2


def test_devserver_ignores_temporary_and_unfinished_folders(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    with start_server(tmp_path, ServingConfig(port=0, poll_interval=60)) as server:
        shutil.copytree(fake_export, tmp_path / "emotion" / ".tmp-5")
        shutil.copytree(fake_export, tmp_path / "emotion" / "6.partial")
        shutil.copytree(fake_export / "variables", tmp_path / "emotion" / "7" / "variables")
        server.refresh()
        assert server.models()["emotion"]["versions"] == {1: "AVAILABLE"}
        shutil.copytree(fake_export, tmp_path / "emotion" / "8")  # written in place, not renamed
        server.refresh()  # first sight: wait until its files stop changing
        assert server.models()["emotion"]["versions"] == {1: "AVAILABLE"}
        server.refresh()
        assert server.models()["emotion"]["versions"] == {1: "END", 8: "AVAILABLE"}


def test_devserver_keeps_serving_when_a_new_version_fails_to_load(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    with start_server(tmp_path, ServingConfig(port=0, poll_interval=60)) as server, \
            ServingClient(server.address) as client:
        bad_warmup = write_fake_export(tmp_path / "bad-warmup", bad_warmup=True)
        publish(bad_warmup, tmp_path, 2)
        broken = publish(fake_export, tmp_path, 3)
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        for _ in range(2):
            server.refresh()
        states = {s["version"]: s for s in client.status()}
        assert states[1]["state"] == "AVAILABLE"
        assert states[2]["state"] == states[3]["state"] == "END"
        assert "warm-up record 0" in states[2]["error_message"]
        assert "no-such-signature" in states[2]["error_message"]
        assert "Loading" in states[3]["error_message"]
        assert client.predict(["so happy"])[0].version == 1


def test_devserver_serves_version_labels_and_follows_config_edits(tmp_path, fake_export):
    base = tmp_path / "models"
    for version in (1, 2):
        publish(fake_export, base, version)
    config_file = tmp_path / "models.config"
    config_file.write_text(MODEL_CONFIG % 1)
    config = ServingConfig(port=0, poll_interval=60, model_config_file=str(config_file))
    with start_server(base, config) as server:
        def version(**spec):
            with ServingClient(server.address, **spec) as client:
                return client.predict(["so happy"])[0].version

        assert server.models()["emotion"]["labels"] == {"stable": 1, "canary": 2}
        assert (version(label="stable"), version(label="canary"), version()) == (1, 2, 2)
        assert version(version=1) == 1
        config_file.write_text(MODEL_CONFIG % 2)  # promote the canary
        server.refresh()
        assert version(label="stable") == 2


def test_devserver_serves_several_models(tmp_path, fake_export, caplog):
    publish(fake_export, tmp_path, 1)
    (tmp_path / "other").mkdir()
    publish(fake_export, tmp_path, 3, name="other")
    (tmp_path / "notes").mkdir()  # not a model: no version folders
    with caplog.at_level(logging.INFO, logger="tfemotion"):
        server = start_server(tmp_path, ServingConfig(port=0, poll_interval=60))
    try:
        assert set(server.models()) == {"emotion", "other"}
        with ServingClient(server.address, name="other") as client:
            assert client.classify(["amazed"])[0].label == "surprise"
            assert client.status()[0]["version"] == 3
        assert any("(2 warm-up requests)" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()
