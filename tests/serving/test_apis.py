"""What client and server share of TF Serving's APIs: the protos, loaded once, and addresses."""

from __future__ import annotations

import subprocess
import sys

from tfemotion.serving.apis import address, apis


def test_addresses_put_ipv6_hosts_in_brackets():
    assert address("::1", 8500) == "[::1]:8500"
    assert address("localhost", 8501) == "localhost:8501"


def test_the_apis_are_imported_once_and_on_first_use():
    assert apis() is apis()
    assert apis().predict.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"
    code = ("import sys, tfemotion.serving.client, tfemotion.serving.apis;"
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
