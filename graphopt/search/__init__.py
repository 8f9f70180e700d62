"""The meta optimizers: prompt optimization of graph nodes and evolutionary structure search.

Strategies are small objects (mutations, crossover, selection, stop conditions) composed by
`StructureSearch`; `run_search` is the default pipeline behind `graphopt search`.
"""

from .archive import Archive, Scored, compact_graph_text, graph_hash
from .budgets import PRESETS, SearchBudget, estimate, get_budget
from .crossover import Crossover, SubgraphCrossover
from .engine import SearchEngine
from .evolution import SearchOutcome, StructureSearch
from .executor import Executor, LocalExecutor, default_parallel
from .evaluator import Evaluator
from .fitness import EvalRequest, Fitness
from .llm_mutation import LLMProposal, Proposal, operator_catalogue
from .generation import Generation, run_generation
from .mutations import (
    Mutate,
    AddParallelBranch,
    ChangeParams,
    DeleteOperator,
    InsertOperator,
    Mutation,
    Rewire,
    StructuralMutation,
    SwapOperator,
    default_mutations,
    mutate,
)
from .phases import Phase, PromptPhase, SeedPhase, StructurePhase, TestPhase, default_phases
from .pipeline import SearchReport, run_search
from .prompt_opt import META_PROMPT, MetaPromptOptimizer
from .proposal import Proposed, Proposer, Slot
from .run import Run
from .selection import Elitism, ParetoSelection, Selection, Tournament, elite, pareto_front, pareto_ranks, select_distinct
from .unit import EvalUnit, UnitResult, run_unit
from .stop import AllStop, AnyStop, BudgetStop, MaxGenerations, NoImprovement, SearchState, StopCondition, WallTime

__all__ = [
    "run_search",
    "SearchReport",
    "SearchBudget",
    "PRESETS",
    "get_budget",
    "estimate",
    "Evaluator",
    "Run",
    "EvalRequest",
    "Fitness",
    "SearchEngine",
    "Executor",
    "LocalExecutor",
    "default_parallel",
    "EvalUnit",
    "UnitResult",
    "run_unit",
    "Phase",
    "SeedPhase",
    "PromptPhase",
    "StructurePhase",
    "TestPhase",
    "default_phases",
    "MetaPromptOptimizer",
    "META_PROMPT",
    "StructureSearch",
    "SearchOutcome",
    "Archive",
    "Scored",
    "graph_hash",
    "compact_graph_text",
    "Mutation",
    "StructuralMutation",
    "InsertOperator",
    "DeleteOperator",
    "SwapOperator",
    "AddParallelBranch",
    "Rewire",
    "ChangeParams",
    "default_mutations",
    "mutate",
    "Mutate",
    "Proposer",
    "Proposed",
    "Slot",
    "Generation",
    "run_generation",
    "LLMProposal",
    "Proposal",
    "operator_catalogue",
    "Crossover",
    "SubgraphCrossover",
    "Selection",
    "Tournament",
    "ParetoSelection",
    "Elitism",
    "elite",
    "select_distinct",
    "pareto_front",
    "pareto_ranks",
    "StopCondition",
    "AnyStop",
    "AllStop",
    "MaxGenerations",
    "BudgetStop",
    "NoImprovement",
    "WallTime",
    "SearchState",
]
