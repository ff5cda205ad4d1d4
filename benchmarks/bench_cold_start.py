"""Cold-start import cost of each function, beside ``import labelbox`` measured in the same run.

A function's cold start pays for its platform library (Powertools, functions-framework, azure.functions) whatever
the handler does; what the handler adds on top is its own cost. Each fresh interpreter imports the platform
library, then the handler module, timing both; the handler's own cost is the difference. ``import labelbox``
(the SDK the functions never import) is timed in fresh interpreters of the same rounds. Rounds interleave the
four measurements, after one warm-up round that writes the bytecode caches; figures are medians.
Goal: each handler's own import costs at most a third of the SDK's.

No configuration is set: importing a handler must need none.

Run: .venv/bin/python benchmarks/bench_cold_start.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# function → (its platform library, the module its platform loads)
FUNCTIONS = {
    "aws": ("aws_lambda_powertools", "handlers.aws"),
    "gcp": ("functions_framework", "handlers.gcp"),
    "azure": ("azure.functions", "function_app"),
}
SDK = "labelbox"
GOAL = 1 / 3  # a handler's own import at most this share of the SDK's

PROBE = """
import importlib, json, sys, time
times = []
for name in sys.argv[1:]:
    start = time.perf_counter()
    importlib.import_module(name)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps(times))
"""


def timed_imports(*modules: str) -> list[float]:
    """Milliseconds to import each module in turn, in a fresh interpreter with no configuration."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        check=True,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
    )
    times: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9, help="measured rounds (default 9)")
    rounds = parser.parse_args().rounds

    platform: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    own: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
    sdk: list[float] = []
    for round_number in range(rounds + 1):  # round 0 warms the bytecode caches and is not counted
        sdk_ms = timed_imports(SDK)[0]
        measured = {name: timed_imports(library, module) for name, (library, module) in FUNCTIONS.items()}
        if round_number == 0:
            continue
        sdk.append(sdk_ms)
        for name, (library_ms, module_ms) in measured.items():
            platform[name].append(library_ms)
            own[name].append(module_ms)

    sdk_ms = statistics.median(sdk)
    print(f"medians of {rounds} rounds, fresh interpreters, Python {sys.version.split()[0]}, no configuration")
    print(f"  import {SDK}: {sdk_ms:7.1f} ms   (goal: each handler's own import <= {sdk_ms * GOAL:.1f} ms)")
    print(
        f"  {'function':<8} {'platform library':<22} {'library':>10} {'+ handler module':<18} {'own':>9} {'of SDK':>6}"
    )
    met = True
    for name, (library, module) in FUNCTIONS.items():
        library_ms, own_ms = statistics.median(platform[name]), statistics.median(own[name])
        share = own_ms / sdk_ms
        met &= share <= GOAL
        print(
            f"  {name:<8} {library:<22} {library_ms:7.1f} ms {module:<18} {own_ms:6.1f} ms {share:6.0%}"
            f"  {'met' if share <= GOAL else 'NOT met'}"
        )
    print(f"goal (each handler's own import <= 1/3 of import {SDK}): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
