"""Search: objectives, budgets, strategies, and the ``micronas search`` run."""

from micronas.search.config import (
    BudgetSpec,
    ExecutionSpec,
    ObjectiveSpec,
    SearchConfig,
    StrategySpec,
    TaskSpec,
)
from micronas.search.costs import Budgets, CostModel, Costs
from micronas.search.objective import Weights
from micronas.search.run import SearchResult, run_search

__all__ = ["BudgetSpec", "Budgets", "CostModel", "Costs", "ExecutionSpec", "ObjectiveSpec",
           "SearchConfig", "SearchResult", "StrategySpec", "TaskSpec", "Weights", "run_search"]
