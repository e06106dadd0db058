"""The long variants of issue 10's load and hostile-input tests, and the fault tests with them.

Not collected by the normal test run (pytest collects only tests/); run it by hand:

    .venv/bin/python bench/long_tests.py [--commands 1000] [--fuzz-scale 20]

It runs tests/test_load.py with ``--commands`` slash commands, still 50 in flight, while a
snapshot and the scheduled jobs run, and tests/test_hostile.py with ``--fuzz-scale`` times
the hypothesis examples, plus tests/test_faults.py, through pytest, and exits with pytest's
status. The assertions are the fast variants': every command acknowledged and answered
once, no error, migrations one at a time; every hostile input refused with nothing changed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=1000, help="slash commands in the load test (default 1000)")
    parser.add_argument("--fuzz-scale", type=int, default=20, help="times the hypothesis examples (default 20)")
    args = parser.parse_args(argv)
    if args.commands < 25 or args.fuzz_scale < 1:
        parser.error("--commands must be at least 25 and --fuzz-scale at least 1")
    env = dict(os.environ, DBOPS_LOAD_COMMANDS=str(args.commands), DBOPS_FUZZ_SCALE=str(args.fuzz_scale))
    started = time.monotonic()
    status = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=5",
                             "tests/test_load.py", "tests/test_hostile.py", "tests/test_faults.py"],
                            cwd=ROOT, env=env, check=False).returncode
    print(f"long variants ({args.commands} commands, fuzz x{args.fuzz_scale}): exit {status} "
          f"in {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
