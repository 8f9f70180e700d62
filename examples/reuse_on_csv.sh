#!/usr/bin/env bash
# Reuse a saved optimizer graph on a new task given as a CSV file (question,choices,answer).
#
#   bash examples/reuse_on_csv.sh            # writes runs/capitals/program.json
#   OUT=/tmp/x bash examples/reuse_on_csv.sh
#
# The graph can be any saved one: a search's runs/NAME/best.graph.json, a hand-written file, or
# a built-in name (tgd, opro, fewshot, ...). Add --program-model gpt-4o-mini (or any litellm
# model) for a model that can answer these; the embedded one shows the plumbing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-runs/capitals}"

# The input shown to the program is built from two columns; an answer counts when it contains
# the right capital (--metric contains), read from its last line (--extract last_line).
graphopt optimize --graph "${GRAPH:-$here/critique_fewshot.graph.yaml}" \
  --task file --source "$here/data/capitals.csv" \
  --input-template "Question: {question}\nChoices: {choices}" --target-key answer \
  --instruction "Answer the question with one of the choices." \
  --output-format "Write only the chosen answer." \
  --metric contains --extract last_line \
  --steps "${STEPS:-1}" --minibatch 3 --val-limit 3 --test-limit 3 --out "$out"

# The optimized program answers new questions, read the same way (JSONL in, JSONL out).
printf '%s\n' '{"question": "What is the capital of Portugal?", "choices": "Porto; Lisbon; Faro"}' \
  | graphopt predict --program "$out/program.json" --input - --out "$out/answers.jsonl"
cat "$out/answers.jsonl"
