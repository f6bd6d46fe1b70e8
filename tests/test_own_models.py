"""Your own torch model through the cost model: ``api.cost(module)`` and ``micronas cost
--torch FILE.py:Class``, with one-line errors for the mistakes people make."""

from __future__ import annotations

import json

import pytest
from torch import nn

from micronas import api
from micronas.deploy.trace import trace
from micronas.errors import MicronasError

pytestmark = pytest.mark.integration

MODEL = '''from torch import nn


class Net(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16),
                         nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


class Broken(nn.Module):
    def __init__(self):
        raise ValueError("needs a width")
'''


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 2))


def test_api_cost_of_a_module_equals_the_traced_network():
    from micronas.hardware import estimate, load_device

    m = _net()
    res = api.cost(m, "nrf52840", input_shape=(3, 32, 32))
    ref = estimate(trace(m, (3, 32, 32)), load_device("nrf52840"))
    assert res.arch == "Sequential" and res.report == ref
    assert res.report.macs == 32 * 32 * 8 * 27 + 16


def test_a_batch_dimension_or_a_wrong_shape_is_one_line():
    with pytest.raises(MicronasError, match=r"has a batch dimension; .*\(3, 32, 32\)"):
        trace(_net(), (1, 3, 32, 32))
    with pytest.raises(MicronasError, match="does not run on one input of shape") as e:
        trace(_net(), (1, 32, 32))
    assert "\n" not in str(e.value)


def test_cli_cost_torch(cli, tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("cost", "--torch", "my_model.py:Net", "--input", "32x32x3", "--device",
                         "nrf52840", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["arch"] == "Net" and d["macs"] == 32 * 32 * 16 * 27 + 32 * 32 * 16 * 9 + 160


@pytest.mark.parametrize("argv, fragment", [
    (["--torch", "my_model.py:Nope", "--input", "32x32x3"], "has no Nope"),
    (["--torch", "my_model.py:Broken", "--input", "32x32x3"], "Broken() failed: ValueError"),
    (["--torch", "missing.py:Net", "--input", "32x32x3"], "is not a file"),
    (["--torch", "my_model.py", "--input", "32x32x3"], "give FILE.py:Class"),
    (["--torch", "my_model.py:Net"], "needs the model's --input"),
    (["--torch", "my_model.py:Net", "--input", "32x32x1"], "does not run on one input"),
    (["1", "--torch", "my_model.py:Net", "--input", "32x32x3"], "one of the two"),
])
def test_cli_cost_torch_mistakes(cli, tmp_path, monkeypatch, argv, fragment):
    (tmp_path / "my_model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("cost", *argv)
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
