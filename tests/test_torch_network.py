import numpy as np
import pytest
import torch
from torch import nn

from micronas.errors import MicronasError
from micronas.ir_torch import trace
from micronas.spaces.nb201 import NB201Space, nb201_counts, nb201_network
from micronas.spaces.nb201.modules import build_network
from micronas.tasks import get_task


def test_param_count_equals_nb201_count():
    rng = np.random.default_rng(1)
    space = NB201Space()
    for _ in range(40):
        a = space.sample(rng)
        for ds in ("cifar10", "imagenet16-120"):
            net = build_network(a, get_task(ds))
            n = sum(p.numel() for p in net.parameters())
            assert n == round(nb201_counts(a, get_task(ds))[1] * 1e6)


def test_forward_shapes_and_seed():
    a = NB201Space().parse("6111")
    x = torch.randn(2, 3, 16, 16)
    t = get_task("imagenet16-120")
    n1, n2 = build_network(a, t, seed=3), build_network(a, t, seed=3)
    assert torch.equal(n1(x), n2(x))
    assert n1(x).shape == (2, 120)


def test_trace_matches_ir_builder():
    rng = np.random.default_rng(2)
    space = NB201Space()
    done = 0
    while done < 6:
        a = space.sample(rng)
        if "none" in a.ops:  # torch computes `none` as x*0; the deployed IR drops it
            continue
        done += 1
        t = trace(build_network(a), (3, 32, 32))
        n = nb201_network(a)
        assert (t.macs, t.params, len(t.layers)) == (n.macs, n.params, len(n.layers))
        assert [la.op for la in t.layers] == [la.op for la in n.layers]


def test_trace_user_model_and_unsupported_layer():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    net = trace(m, (3, 16, 16))
    ops = [la.op for la in net.layers]
    assert ops == ["conv2d", "depthwise_conv2d", "global_avgpool", "fully_connected"]
    assert net.layers[0].fused_relu and net.layers[0].bias_params == 8
    assert net.macs == 16 * 16 * (8 * 27 + 8 * 9) + 16
    with pytest.raises(MicronasError, match="GELU"):
        trace(nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU()), (3, 8, 8))
