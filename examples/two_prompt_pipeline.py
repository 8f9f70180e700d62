"""A pipeline of two prompts that graphopt optimizes as a program of two components.

graphopt runs `run(components, example)` on every example and optimizes the texts in
COMPONENTS (their instructions, demos and output formats) with any optimizer graph:

    graphopt optimize --graph tgd --task word_sorting --difficulty easy --pipeline two_prompt_pipeline:run
    graphopt eval --task file --source qa.csv --pipeline two_prompt_pipeline:run --metric contains

(run it from this folder, or put the folder on PYTHONPATH). `components.call(name, text)` runs
one component on the program model and records its input and output in the example's trace,
so a critique sees what each component did and can name the one to change.
"""

from __future__ import annotations

# The components' first texts; graphopt rewrites them. The one named "answer" gives the answer.
COMPONENTS = {
    "notes": "List the key facts in the input that the answer depends on, one per line.",
    "answer": "Using the notes, give the final answer only.",
}


def run(components, example):
    """Two model calls: notes on the input, then the answer from the input and the notes.

    Args:
        components: the named texts being optimized; `components.call(name, text)` runs one.
        example: the task example (`example.input`, and `example.meta` for other columns).

    Returns:
        The text the task's rule reads the answer from.
    """
    notes = components.call("notes", example.input)
    return components.call("answer", f"{example.input}\n\nNotes:\n{notes}")
