"""Throughput of the multi-draft verifiers: positions per second of each rule's jitted, vmapped
``verify`` at V = 32,000, n in {2, 4, 8}, batch 256, next to a floor (a jitted sum over p and q,
i.e. reading the inputs once). Host-only rules are skipped. Prints a markdown table.

Run: ``.venv/bin/python benchmarks/bench_multidraft.py`` (wall-clock numbers, never asserted).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import spectheory


def _inputs(V: int, batch: int, seed: int = 0, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    logits = rng.standard_t(df=3, size=(batch, V)) * 2.0
    p = jax.nn.softmax(jnp.asarray(logits, dtype), axis=-1)
    noisy = logits / 1.3 + 0.5 * rng.standard_normal((batch, V))
    q = jax.nn.softmax(jnp.asarray(noisy, dtype), axis=-1)
    return p, q


def _best_time(fn, *args, reps: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def main(V: int = 32_000, batch: int = 256, ns=(2, 4, 8), reps: int = 5) -> list[dict]:
    """Benchmark every registered JAX rule; print and return the rows."""
    p, q = _inputs(V, batch)
    floor_fn = jax.jit(lambda p, q: jnp.sum(p) + jnp.sum(q))
    floor = _best_time(floor_fn, p, q, reps=reps)
    keys = jax.random.split(jax.random.key(0), batch)
    dkeys = jax.random.split(jax.random.key(1), batch)
    rows = []
    print(f"backend: {jax.default_backend()}, V = {V}, batch = {batch}, float32; "
          f"floor (jitted sum over p and q): {floor * 1e3:.3f} ms = {batch / floor:,.0f} positions/s\n")
    print("| rule | n | time per batch (ms) | positions/s | floor positions/s | time / floor |")
    print("|---|---|---|---|---|---|")
    for name in spectheory.rules():
        r = spectheory.rule(name)
        if r.verifier.host_only:
            continue
        for n in ns:
            if not r.supports(n, V):
                continue
            drafts = jax.jit(jax.vmap(lambda k, q: r.drafts.sample(k, q, n)))(dkeys, q)
            fn = jax.jit(jax.vmap(r.verifier.verify))
            t = _best_time(fn, keys, p, q, drafts, reps=reps)
            row = dict(rule=name, n=n, ms=t * 1e3, pos_per_s=batch / t, floor_pos_per_s=batch / floor, ratio=t / floor)
            rows.append(row)
            print(f"| {name} | {n} | {t * 1e3:.2f} | {batch / t:,.0f} | {batch / floor:,.0f} | {t / floor:.1f} |")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--V", type=int, default=32_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    main(V=a.V, batch=a.batch, reps=a.reps)
