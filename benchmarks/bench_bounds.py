"""Benchmarks for spectheory.bounds.

    .venv/bin/python benchmarks/bench_bounds.py            # full tables
    .venv/bin/python benchmarks/bench_bounds.py --quick    # smaller scaling table

Prints (times are medians after a jit warm-up call):

1. ``optimal_acceptance`` at V = 152,064 with a batch of 64 positions (float32), for i.i.d.
   drafts, drafts without replacement (n = 2 closed form and n = 8 quadrature) and greedy drafts;
   the alternatives run in the same process, with ratios: for i.i.d. drafts the package's own
   sort-and-scan path (the fallback of the threshold search) and a NumPy sort, without
   replacement the exact scan over every prefix (the fallback of the blocked path);
2. the exact transport LP via POT at V = 40, n = 3 (64,000 ordered i.i.d. tuples);
3. a scaling table over V = 1k..152k and n = 2..8.

x64 is enabled so that the ratio sort (without replacement, and the i.i.d. sort-and-scan
alternative) can use packed int64 keys (XLA's CPU sort is roughly ten times faster on one integer
operand than on float keys with a payload); the inputs stay float32. The i.i.d. threshold search
does not sort.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from spectheory.bounds import lp_acceptance, optimal_acceptance  # noqa: E402
from spectheory.bounds._optimal import _optimal_core, _ratios, _sort_by_ratio, _sorted_core  # noqa: E402
from spectheory.bounds._race import _default_nodes, _wor_scan_best  # noqa: E402

V_BIG = 152_064
BATCH = 64
TARGETS = {"iid": 0.1, "without_replacement": 1.0}


def llm_like_laws(V, batch, seed=0, dtype=np.float32):
    """Target/draft pairs shaped like LM next-token laws: softmax of Gaussian logits (scale 3),
    the drafter's logits perturbed by unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, V)) * 3.0
    draft = logits + rng.standard_normal((batch, V))

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    return softmax(logits).astype(dtype), softmax(draft).astype(dtype)


def _sorted_core_scan(p, q, n, K):
    """Without replacement by the exact scan over every prefix (the blocked path's fallback)."""
    perm, _ = _sort_by_ratio(_ratios(p, q))
    pqs = jnp.take_along_axis(jnp.stack([p, q], -1), perm[..., None], -2)
    return _wor_scan_best(pqs[..., 0], pqs[..., 1], n, K)


def timeit(fn, repeats=3):
    jax.block_until_ready(fn())  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def numpy_iid(p, q, n):
    """Reference i.i.d. α*: NumPy argsort by p/q and prefix sums (float64 accumulation)."""
    key = np.where(q > 0, p / np.where(q > 0, q, 1), np.inf)
    o = np.argsort(key, axis=-1, kind="stable")
    ps = np.take_along_axis(p, o, -1).astype(np.float64)
    qs = np.take_along_axis(q, o, -1).astype(np.float64)
    F = np.cumsum(ps, -1) - np.cumsum(qs, -1) ** n
    return 1 + np.minimum(F.min(-1), 0)


def big_table(repeats):
    p, q = llm_like_laws(V_BIG, BATCH)
    P, Q = jnp.asarray(p), jnp.asarray(q)
    print(f"\n## optimal_acceptance at V = {V_BIG:,}, batch {BATCH}, float32 inputs\n")
    print(f"| scheme | n | time [s] | mean α* | target [s] | met |")
    print(f"|---|---:|---:|---:|---:|:---:|")
    out = {}
    for scheme, n in [("iid", 8), ("without_replacement", 2), ("without_replacement", 8), ("greedy", 8)]:
        t = timeit(lambda: _optimal_core(P.reshape(-1, V_BIG), Q.reshape(-1, V_BIG), n, scheme, None), repeats)
        val = float(optimal_acceptance(P, Q, n, scheme).value.mean())
        target = TARGETS.get(scheme) if (scheme, n) != ("without_replacement", 2) else None
        met = "" if target is None else ("yes" if t < target else "no")
        print(f"| {scheme} | {n} | {t:.3f} | {val:.6f} | {target if target else ''} | {met} |")
        out[(scheme, n)] = (t, val)
    t_jax, v_jax = out[("iid", 8)]
    sorted_iid = jax.jit(_sorted_core, static_argnums=(2, 3, 4))
    t_sorted = timeit(lambda: sorted_iid(P, Q, 8, "iid", None), repeats)
    np_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = numpy_iid(p, q, 8)
        np_times.append(time.perf_counter() - t0)
    t_np = float(np.median(np_times))
    err = np.abs(np.asarray(optimal_acceptance(P, Q, 8, "iid").value, np.float64) - ref).max()
    err_sorted = np.abs(np.asarray(sorted_iid(P, Q, 8, "iid", None)[0], np.float64) - ref).max()
    print(f"\ni.i.d. n = 8, alternatives in the same process:\n")
    print("| implementation | time [s] | ratio to threshold search | max abs error vs NumPy float64 |")
    print("|---|---:|---:|---:|")
    print(f"| spectheory threshold search (default) | {t_jax:.3f} | 1.00 | {err:.1e} |")
    print(f"| spectheory sort-and-scan (fallback) | {t_sorted:.3f} | {t_sorted / t_jax:.1f} | {err_sorted:.1e} |")
    print(f"| NumPy argsort + float64 prefix sums | {t_np:.3f} | {t_np / t_jax:.1f} | 0 (reference) |")
    # without replacement n = 8: the blocked path (default) against the exact scan over every
    # prefix (its fallback), both after the same sort, in the same process
    exact_wor = jax.jit(lambda P, Q: _sorted_core_scan(P, Q, 8, _default_nodes(P.dtype)))
    t_scan = timeit(lambda: exact_wor(P, Q), repeats)
    t_blk, v_blk = out[("without_replacement", 8)]
    rows = slice(0, 4)
    p64, q64 = jnp.asarray(p[rows], jnp.float64), jnp.asarray(q[rows], jnp.float64)
    ref8 = np.asarray(optimal_acceptance(p64, q64, 8, "without_replacement", num_nodes=128).value)
    got = np.asarray(optimal_acceptance(P[rows], Q[rows], 8, "without_replacement").value, np.float64)
    got_scan = np.asarray(exact_wor(P[rows], Q[rows])[0], np.float64)
    print(f"\nwithout replacement n = 8, alternatives in the same process:\n")
    print("| implementation | time [s] | ratio to blocked path | max abs error vs float64, 128 nodes (4 rows) |")
    print("|---|---:|---:|---:|")
    print(f"| spectheory blocked path (default) | {t_blk:.3f} | 1.00 | {np.abs(got - ref8).max():.1e} |")
    print(f"| spectheory exact prefix scan (fallback) | {t_scan:.3f} | {t_scan / t_blk:.1f} | "
          f"{np.abs(got_scan - ref8).max():.1e} |")
    f64 = np.asarray(optimal_acceptance(p64, q64, 8, "without_replacement").value)
    print(f"\nfloat64 with the default 64 nodes vs 128 nodes: max |error| = {np.abs(f64 - ref8).max():.1e}")
    return out


def lp_table(repeats):
    rng = np.random.default_rng(40)
    V, n = 40, 3
    p = rng.dirichlet(np.ones(V) * 0.5)
    q = rng.dirichlet(np.ones(V) * 0.5)
    tuples = np.array(list(itertools.product(range(V), repeat=n)))
    probs = np.prod(q[tuples], axis=1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = lp_acceptance(p, tuples, probs, "pot")
        times.append(time.perf_counter() - t0)
    closed = float(optimal_acceptance(p, q, n, "iid").value)
    print(f"\n## transport LP via POT at V = {V}, n = {n} ({len(tuples):,} ordered iid tuples)\n")
    print(f"time {np.median(times):.3f} s (target < 5 s); LP α* = {res.value:.12f}, "
          f"closed form α* = {closed:.12f}, |diff| = {abs(res.value - closed):.1e}")


def scaling_table(vs, ns, batch, repeats):
    print(f"\n## scaling: time [s] per call, batch {batch}, float32 (iid | without replacement | greedy)\n")
    header = "| V | " + " | ".join(f"n={n}" for n in ns) + " |"
    print(header)
    print("|---:|" + "---:|" * len(ns))
    for V in vs:
        p, q = llm_like_laws(V, batch, seed=V)
        P, Q = jnp.asarray(p), jnp.asarray(q)
        cells = []
        for n in ns:
            ts = [timeit(lambda s=s: _optimal_core(P, Q, n, s, None), repeats) for s in ("iid", "without_replacement", "greedy")]
            cells.append(" / ".join(f"{t:.3f}" for t in ts))
        print(f"| {V:,} | " + " | ".join(cells) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small scaling table (batch 8, fewer sizes)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"# spectheory.bounds benchmark\n\njax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    big_table(args.repeats)
    lp_table(args.repeats)
    if args.quick:
        scaling_table([1_000, 16_000, V_BIG], [2, 8], 8, 1)
    else:
        scaling_table([1_000, 4_000, 16_000, 64_000, V_BIG], [2, 4, 8], BATCH, 1)


if __name__ == "__main__":
    main()
