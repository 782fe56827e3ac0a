"""``python -m bench.zoo [--models a,b] [--quick] [--cache DIR] [--out DIR]``: run the zoo, write results.md/.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.zoo import fetch, report
from bench.zoo.models import ZOO, select
from bench.zoo.run import run_model

HERE = Path(__file__).resolve().parent


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.zoo", description=__doc__)
    parser.add_argument("--models", help=f"comma-separated subset of: {', '.join(m.name for m in ZOO)}")
    parser.add_argument("--quick", action="store_true", help="few samples per model (development)")
    parser.add_argument("--cache", help=f"cache folder (default ${fetch.CACHE_ENV} or ~/.cache/edgeact-zoo)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.md and results.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    models, cache = select(args.models), fetch.cache_dir(args.cache)
    header = {**report.machine(), "quick": args.quick, "cache": str(cache)}
    results = []
    for model in models:
        start = time.perf_counter()

        def log(message: str, name: str = model.name, start: float = start) -> None:
            print(f"[{time.perf_counter() - start:7.1f} s] {name}: {message}", file=sys.stderr, flush=True)

        results.append(run_model(model, cache, args.quick, log))
        results[-1]["total_s"] = time.perf_counter() - start
        log(f"done, {len(results[-1]['errors'])} error(s)")
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out / "results.json", header, results)
    report.write_markdown(args.out / "results.md", header, results)
    if not args.quick and len(models) == len(ZOO) and args.out.resolve() == HERE:
        if report.sync_readme(HERE.parents[1] / "README.md", header, results):
            print("README.md: zoo table updated", file=sys.stderr)
    print("\n".join(report.table(results)))
    print(f"\nwrote {args.out / 'results.md'} and {args.out / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
