"""The scripted search model (see graphopt.testing.search_model), under the name the tests use."""

from graphopt.testing.search_model import GOOD_INSTRUCTION, scripted_search as scripted

__all__ = ["scripted", "GOOD_INSTRUCTION"]
