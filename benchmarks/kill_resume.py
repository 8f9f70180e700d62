"""kill -9 a scripted search at random moments, resume it without a cache, compare with a clean run.

Each trial starts `python -m graphopt.testing.scripted_run`, kills it with SIGKILL after a random
share of the clean run's search time (from its store's creation), then resumes it (no response cache anywhere: only the store
can rebuild the search). A trial passes when the resumed run finishes with the clean run's
winner and store contents, and no evaluation that was done before the kill ran again. Exits 1
unless every trial passes.

Run: python benchmarks/kill_resume.py [--trials 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from graphopt.testing.scripted_run import contents, search_seconds, trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        winner, wall = search_seconds(tmp / "reference")
        reference = contents(tmp / "reference")
        print(f"clean run: {wall:.1f}s of search (after start-up), {len(reference)} candidates, winner {winner}")
        results = []
        for n in range(args.trials):
            result = trial(tmp, n, rng.uniform(0.05, 0.95) * wall, reference, winner)
            results.append(result)
            print(f"  trial {n:>2}: kill at {result['delay']:5.2f}s, {result['done_before']:>2} done before, "
                  f"{result['repeated']} repeated, same winner {result['same_winner']}, same store {result['same_store']}")
    ok = sum(r["same_winner"] and r["same_store"] and r["repeated"] == 0 for r in results)
    print(f"{ok} of {len(results)} trials resumed to the clean run's winner and store with 0 finished evaluations repeated;"
          f" {sum(r['repeated'] for r in results)} repeated in all")
    print(f"{'PASS' if ok == len(results) else 'FAIL'}  every trial resumed exactly")
    if ok != len(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
