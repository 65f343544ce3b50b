"""The development server: session config, ports, arguments."""

from __future__ import annotations


from support import publish

import pytest
from tfemotion.config import ServingConfig
from tfemotion.serving.server import DevServer


def test_the_server_runs_its_sessions_with_the_session_config(server):
    from tensorflow.core.protobuf import rewriter_config_pb2

    rewrite = server.store.session_config.graph_options.rewrite_options
    assert rewrite.function_optimization == rewriter_config_pb2.RewriterConfig.OFF
    loaded = server.store.servables["emotion"][1]
    assert loaded.servable.session._config.graph_options.rewrite_options.function_optimization \
        == rewriter_config_pb2.RewriterConfig.OFF


def test_devserver_on_a_busy_port_fails_before_loading_any_model(tmp_path, server, fake_export,
                                                                 monkeypatch):
    publish(fake_export, tmp_path, 1)
    port = int(server.address.rsplit(":", 1)[1])
    busy = DevServer(tmp_path, ServingConfig(port=port, rest_port=None))
    monkeypatch.setattr(busy.store, "refresh",
                        lambda **_: pytest.fail("loaded the models before binding the port"))
    with pytest.raises(OSError, match="choose another with --port"):
        busy.start()


def test_devserver_refuses_bad_arguments_and_busy_ports(tmp_path, server):
    with pytest.raises(ValueError, match="base_path must be a folder"):
        DevServer(tmp_path / "missing")
    port = int(server.address.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="Cannot bind"):
        DevServer(tmp_path, ServingConfig(port=port, rest_port=None)).start()
    bad_config = tmp_path / "models.config"
    bad_config.write_text("model_config_list { config { nme: 'emotion' } }")
    for path, message in ((tmp_path / "none.config", "Cannot read the model config"),
                          (bad_config, "nme")):
        with pytest.raises(ValueError, match=message):
            DevServer(tmp_path, ServingConfig(model_config_file=str(path)))
    bad_session = tmp_path / "session.config"
    bad_session.write_text("graph_options { rewrite_options { function_optimization: MAYBE } }")
    with pytest.raises(ValueError, match=r"session config .*session.config, line 1.*MAYBE"):
        DevServer(tmp_path, ServingConfig(session_config_file=str(bad_session)))
    assert ServingConfig(port=0).port == 0
    with pytest.raises(ValueError, match="port must be in 0..65535"):
        ServingConfig(port=70000)
    with pytest.raises(ValueError, match="poll_interval"):
        ServingConfig(poll_interval=0)
