"""Search: objectives, budgets, strategies, and the ``micronas search`` run."""

from micronas.search.costs import Budgets, CostModel, Costs
from micronas.search.objective import Weights
from micronas.search.run import SearchConfig, SearchResult, run_search

__all__ = ["Budgets", "CostModel", "Costs", "SearchConfig", "SearchResult", "Weights",
           "run_search"]
