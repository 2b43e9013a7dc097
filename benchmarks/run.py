"""Run every benchmark in this folder and print their tables: ``python benchmarks/run.py``.

Each ``bench_*.py`` script has a ``main(argv)``; pass ``--only NAME`` to run one of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="run only bench_<NAME>.py")
    a = ap.parse_args()
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if a.only:
        names = [n for n in names if n == f"bench_{a.only}"]
        if not names:
            raise SystemExit(f"no benchmark named {a.only}")
    for n in names:
        importlib.import_module(n).main([])


if __name__ == "__main__":
    main()
