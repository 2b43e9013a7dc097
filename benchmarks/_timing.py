"""Small timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import platform
import statistics
import time

import jax


def timeit(fn, *args, repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """Median wall time (seconds) of ``fn(*args)`` over ``repeat`` runs, after ``warmup`` calls.

    JAX results are waited for with ``jax.block_until_ready``.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def machine() -> str:
    """One line describing the machine the numbers come from."""
    import os

    dev = jax.devices()[0]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"jax {jax.__version__} on {dev.platform} ({dev.device_kind})")


def table(rows, headers) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
