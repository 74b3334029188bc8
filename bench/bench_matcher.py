"""How fast the explanation matcher answers, and how often it is right, on the eval set."""

from __future__ import annotations

import statistics
import time
import tomllib
from pathlib import Path

from bot.services.explanations import Matcher, load_library

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    started = time.perf_counter()
    library = load_library("vi")
    matcher = Matcher(library)
    load_ms = (time.perf_counter() - started) * 1000
    cases = tomllib.loads((ROOT / "tests/data/faq_eval.toml").read_text("utf-8"))["case"]
    timings: list[float] = []
    right = 0
    for _ in range(20):
        for case in cases:
            t0 = time.perf_counter()
            best = matcher.best(case["q"])
            timings.append(time.perf_counter() - t0)
            right += best is not None and best.key == case["topic"]
    runs = len(timings)
    print(f"topics: {len(library.topics)}, eval questions: {len(cases)}")
    print(f"load + index: {load_ms:.1f} ms")
    print(f"accuracy (top-1): {right / runs:.1%}")
    print(f"per question: median {statistics.median(timings) * 1e3:.2f} ms, "
          f"p95 {sorted(timings)[int(runs * 0.95)] * 1e3:.2f} ms")
    print(f"throughput: {runs / sum(timings):.0f} questions/s on one core")


if __name__ == "__main__":
    main()
