"""MultiWorkerMirroredStrategy with two local worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from support import reserved_ports

WORKER = textwrap.dedent("""
    import json, sys
    import tfemotion
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits
    from tfemotion.training import train
    data, model, run = sys.argv[1:4]
    config = FinetuneConfig(model=model, epochs=1, learning_rate=1e-2, batch_size=16,
                            recipe="default")
    metrics = train(load_splits(DataConfig(source=data)), DataConfig(source=data), config, run,
                    verbose=0)
    print("METRICS " + json.dumps(metrics))
""")


def test_train_multi_worker_with_two_local_workers(tmp_path, emotion_dir, tiny_bert_dir):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run = tmp_path / "run"
    workers, outputs = [], []
    # TF_CONFIG names every worker's port before any starts: the ports stay held for the
    # workers (TensorFlow's servers bind them with SO_REUSEADDR) until the run ends.
    with reserved_ports(2) as ports:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        try:
            for index in range(2):
                env = {**os.environ, "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}})}
                workers.append(subprocess.Popen(
                    [sys.executable, str(script), str(emotion_dir), str(tiny_bert_dir), str(run)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for worker in workers:
                out, err = worker.communicate(timeout=600)
                assert worker.returncode == 0, err[-3000:]
                outputs.append(json.loads(out.split("METRICS ", 1)[1]))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
    assert outputs[0]["epochs"] == outputs[1]["epochs"]  # one synchronised model
    config = json.loads((run / "config.json").read_text())
    assert (config["strategy"], config["replicas"]) == ("multi-worker", 2)
    assert json.loads((run / "metrics.json").read_text())["best_epoch"] == 1
