"""``params`` and ``flops`` as indicators: read from the deployed network IR (no torch)."""

from __future__ import annotations

from micronas.proxies.registry import IndicatorValue, ProxySettings, register
from micronas.spaces import Candidate


@register("params", higher_is_better=True, deterministic=True, needs_data=False,
          paper="baseline (Abdelfattah et al., ICLR 2021)",
          description="parameters of the deployed network (IR, dead edges dropped)")
def params(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return IndicatorValue(float(cand.network().params))


@register("flops", higher_is_better=True, deterministic=True, needs_data=False,
          paper="baseline (Abdelfattah et al., ICLR 2021)",
          description="multiply-accumulates of the deployed network (IR, dead edges dropped)")
def flops(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return IndicatorValue(float(cand.network().macs))
