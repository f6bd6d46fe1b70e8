"""Reference networks in the IR: the MLPerf Tiny v1.0 models, so costs can be checked
against published board measurements (``../shared/data/mcu``).

- ``kws``: DS-CNN keyword spotting (49x10x1 MFCC input, 12 classes): Conv 10x4 stride 2
  (64) then 4 x (depthwise 3x3 + pointwise 64), average pool, FC 12. 2.66 M MACs.
- ``vww``: MobileNetV1 0.25x visual wake words (96x96x3, 2 classes). 7.5 M MACs.
- ``ad``: FC autoencoder anomaly detection (640 inputs): 4 x FC 128, FC 8, 4 x FC 128,
  FC 640, each hidden layer with BatchNorm and ReLU. 0.26 M MACs.
- ``ic``: ResNet-8 image classification (32x32x3, 10 classes). 12.5 M MACs.

Every convolution and hidden dense layer carries a BatchNorm folded into it and a fused
ReLU, as the int8 TFLite models do.
"""

from __future__ import annotations

from collections.abc import Callable

from micronas.errors import ArchError
from micronas.infra.registry import Registry
from micronas.ir import GraphBuilder, Network


def kws() -> Network:
    g = GraphBuilder("mlperf:kws (DS-CNN)", (1, 49, 10))
    x = g.relu(g.conv(g.input_name, 64, (10, 4), 2, (5, 1), name="conv1"))
    for i in range(4):
        x = g.relu(g.conv(x, 64, 3, 1, 1, groups=64, name=f"dw{i + 1}"))
        x = g.relu(g.conv(x, 64, 1, name=f"pw{i + 1}"))
    x = g.global_avgpool(x, name="avgpool")
    return g.build([g.fc(x, 12, name="fc")], meta={"reference": "mlperf:kws"})


def vww() -> Network:
    g = GraphBuilder("mlperf:vww (MobileNetV1 0.25)", (3, 96, 96))
    x = g.relu(g.conv(g.input_name, 8, 3, 2, 1, name="conv1"))
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
              (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]
    for i, (out, stride) in enumerate(blocks, start=1):
        c = g.shape(x)[0]
        x = g.relu(g.conv(x, c, 3, stride, 1, groups=c, name=f"dw{i}"))
        x = g.relu(g.conv(x, out, 1, name=f"pw{i}"))
    x = g.global_avgpool(x, name="avgpool")
    return g.build([g.fc(x, 2, name="fc")], meta={"reference": "mlperf:vww"})


def ad() -> Network:
    g = GraphBuilder("mlperf:ad (FC autoencoder)", (640,))
    x = g.input_name
    for i, width in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], start=1):
        x = g.relu(g.fc(x, width, bn=True, name=f"fc{i}"))
    return g.build([g.fc(x, 640, name="fc_out")], meta={"reference": "mlperf:ad"})


def ic() -> Network:
    g = GraphBuilder("mlperf:ic (ResNet-8)", (3, 32, 32))
    x = g.relu(g.conv(g.input_name, 16, 3, 1, 1, name="conv1"))
    for i, (out, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
        a = g.relu(g.conv(x, out, 3, stride, 1, name=f"s{i}.conv_a"))
        b = g.conv(a, out, 3, 1, 1, name=f"s{i}.conv_b")
        short = x if stride == 1 else g.conv(x, out, 1, stride, 0, bn=False, bias=True,
                                             name=f"s{i}.shortcut")
        x = g.relu(g.add(b, short, name=f"s{i}.add"))
    x = g.global_avgpool(x, name="avgpool")
    return g.build([g.fc(x, 10, name="fc")], meta={"reference": "mlperf:ic"})


#: The MLPerf Tiny reference networks (``mlperf:NAME`` on the command line).
REFERENCES: Registry[Callable[[], Network]] = Registry("reference network", error=ArchError)
for _fn, _summary in [(kws, "DS-CNN keyword spotting, 49x10x1 MFCCs, 12 classes"),
                      (vww, "MobileNetV1 0.25x visual wake words, 96x96x3, 2 classes"),
                      (ad, "FC autoencoder anomaly detection, 640 inputs"),
                      (ic, "ResNet-8 image classification, 32x32x3, 10 classes")]:
    REFERENCES.register(_fn.__name__, _fn, _summary, "MLPerf Tiny v1.0")


def reference_network(name: str) -> Network:
    """A reference network by name (``kws``, ``vww``, ``ad``, ``ic``)."""
    if name not in REFERENCES:  # the choices as they are written: mlperf:NAME
        close = REFERENCES.closest(name)
        guess = f" (did you mean 'mlperf:{close}'?)" if close else ""
        raise ArchError(f"unknown reference network 'mlperf:{name}'{guess}; choose from "
                        f"{', '.join('mlperf:' + n for n in REFERENCES)}")
    return REFERENCES[name]()
