"""Training-free indicators, registered by name.

>>> from micronas.proxies import list_indicators, score_many
"""

from micronas.proxies import cost_proxies, modern, tenas, zero_cost  # noqa: F401  (registration)
from micronas.proxies.registry import (
    Indicator,
    IndicatorValue,
    ProxySettings,
    get_indicator,
    list_indicators,
    parse_indicators,
    register,
    register_population,
)
from micronas.proxies.scoring import Score, compute, score_batch, score_many

register_population(
    "tenas", parts=("ntk_cond", "linear_regions"), combine="rank_sum",
    paper="Chen, Gong, Wang, TE-NAS, ICLR 2021",
    description="rank of -ntk_cond plus rank of linear_regions over the scored set "
                "(higher is better; defined for a set of architectures)",
)

DEFAULT_INDICATORS = ["ntk_cond", "linear_regions", "tenas"]

__all__ = ["DEFAULT_INDICATORS", "Indicator", "IndicatorValue", "ProxySettings", "Score",
           "compute", "get_indicator", "list_indicators", "parse_indicators", "register",
           "score_batch", "score_many"]
