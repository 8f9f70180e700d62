#!/usr/bin/env bash
# Search for an optimizer graph, then draw the winning composition and write the run's report.
#
#   bash examples/search_and_draw.sh         # writes runs/ws-search/{best.graph.json,best.dot,report.html}
#   bash examples/search_and_draw.sh --seed-graph tgd --seed-graph fewshot   # extra options go to `graphopt search`
#
# --budget tiny with one generation of one child is a smoke run; use --budget small or medium
# (and a stronger --program-model) for a real search.
set -euo pipefail
out="${OUT:-runs/ws-search}"

graphopt search --task word_sorting --difficulty easy --budget tiny --out "$out" \
  --val-limit "${VAL:-3}" --test-limit "${VAL:-3}" --generations 1 --children 1 "$@"

# The winner as a drawing (.dot always works; .svg/.png need Graphviz) and every candidate tried.
graphopt viz --run "$out" --out "$out/best.dot"
graphopt report "$out"
# The searched graph is a file like any other: run it on another task.
echo "reuse it: graphopt optimize --graph $out/best.graph.json --task dyck_languages --difficulty easy"
