"""Best-of-N: one episode per attempt of the same goal, each a scoped run that
records its own outcome; the best completed attempt wins.

    python best_of_n.py --db /tmp/best.db --attempts 5
"""

import argparse
import json
import random
import sys

import runjournal


class FlakyBackend(Exception):
    """An attempt that failed (recorded as run_failed with this type and message)."""


def attempt(run: runjournal.Run, seed: int) -> float:
    rng = random.Random(seed)
    run.phase_started(0, "draft")
    run.step([("user", "write a haiku about fsync"), ("assistant", f"draft #{seed}")])
    if rng.random() < 0.3:
        raise FlakyBackend(f"backend timed out on attempt {seed}")
    run.phase_completed(0, "draft", f"draft #{seed}")
    score = round(rng.random(), 3)
    run.custom("score", json.dumps({"score": score}))
    run.output = json.dumps({"score": score})
    return score


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--goal", default="haiku")
    parser.add_argument("--attempts", type=int, default=5)
    args = parser.parse_args()

    journal = runjournal.Journal.open(args.db)
    for _ in range(args.attempts):
        episode = journal.next_episode(args.goal)
        try:
            with journal.run((args.goal, episode, "writer"), {"model": "m1", "backend": "demo"}) as run:
                attempt(run, seed=episode)
        except FlakyBackend:
            pass  # recorded as run_failed; the next attempt is the next episode
    results = []
    for record in journal.runs(goal=args.goal):
        state = journal.state(record.run)
        score = json.loads(state.output)["score"] if state.status == "completed" else None
        results.append({"episode": record.run.episode, "status": state.status, "score": score})
    completed = [r for r in results if r["score"] is not None]
    best = max(completed, key=lambda r: r["score"]) if completed else None
    print(json.dumps({"attempts": results, "best": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
