"""Structural mutations: small strategy objects that each propose one edited copy of a graph spec.

Every mutation works from port types and the operator registry, never from operator names, so a
user-registered operator takes part as soon as its ports fit. A proposed child always validates
(`graphopt.graph.validate`) and differs from its parent; a mutation that finds nothing valid to do
returns None. `mutate` tries random mutations until one gives a child and says why the others failed.
The working copy an edit changes is `graph_edit.EditableGraph`; parameter changes come from `params`.
Modules: `base` (the two base classes), `nodes` (insert, delete, swap), `branches` (parallel
branch, rewire, params), `mutate` (drawing them; the search's proposer).

Example:
    >>> import random
    >>> from graphopt.graph.io import load_graph
    >>> child, failed = mutate(load_graph("tgd_select"), default_mutations(), random.Random(0))
    >>> from graphopt.search.graph_edit import spec_problems
    >>> spec_problems(child), child.provenance.mutation in {m.name for m in default_mutations()}
    ([], True)
"""

from __future__ import annotations

__all__ = [
    "Mutation",
    "StructuralMutation",
    "InsertOperator",
    "DeleteOperator",
    "SwapOperator",
    "AddParallelBranch",
    "Rewire",
    "ChangeParams",
    "default_mutations",
    "Mutate",
    "mutate",
]

from .base import Mutation, StructuralMutation
from .branches import AddParallelBranch, ChangeParams, Rewire
from .mutate import Mutate, default_mutations, mutate
from .nodes import DeleteOperator, InsertOperator, SwapOperator
