"""Check that vLLM's rejection sampler, fed through ``bench_chain``'s layout adapter, follows
the law of token verification that spectheory computes exactly.

Run (needs vllm; not part of the test suite): ``python benchmarks/vllm_law_check.py``.

For ``--rows`` small problems (target laws p[g+1, V], draft laws q[g, V], drafts fixed per row)
each row is replicated ``--samples`` times in one vLLM call, with a fresh bonus token per
replicate drawn from the last target row. Per row it compares

* the mean number of accepted drafts with its exact value from
  :func:`spectheory.verify.chain_kernel` (tolerance: ``--z`` standard errors of the mean,
  the standard deviation taken from the exact law), and
* the joint law of (number accepted, emitted token) with ``chain_kernel`` by Pearson's
  chi-squared test (:func:`spectheory.audit.chi_square_test`, level ``--alpha``).

It exits with status 1 if any row fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_chain import num_accepted_from_vllm, vllm_callables  # noqa: E402

from spectheory.audit import chi_square_test  # noqa: E402
from spectheory.verify import chain_kernel  # noqa: E402


def problems(rows, g, V, seed):
    """Random (target logits, p, q, drafts) like the benchmark's: draft logits = target + noise."""
    rng = np.random.default_rng(seed)
    tl = (rng.standard_normal((rows, g + 1, V)) * 3).astype(np.float32)
    dl = tl[:, :g] + rng.standard_normal((rows, g, V)).astype(np.float32)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(tl).astype(np.float32), softmax(dl).astype(np.float32)
    qq = q.astype(np.float64)
    d = np.array([[rng.choice(V, p=qq[r, i] / qq[r, i].sum()) for i in range(g)] for r in range(rows)])
    return tl, p, q, d


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--gamma", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--samples", type=int, default=20_000, help="replicates per row")
    ap.add_argument("--z", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    found, notes = vllm_callables()
    for n in notes:
        print("- " + n)
    if not found:
        print("no vLLM rejection sampler can run here; nothing checked")
        return 2
    R, g, V, S = a.rows, a.gamma, a.vocab, a.samples
    tl, p, q, d = problems(R, g, V, a.seed)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)  # vLLM gets the float32 laws
    p64, q64 = p64 / p64.sum(-1, keepdims=True), q64 / q64.sum(-1, keepdims=True)
    kernels = [np.asarray(chain_kernel(p64[r], q64[r], d[r])) for r in range(R)]
    rep = lambda x: np.repeat(x, S, axis=0)  # noqa: E731 - row r occupies [r*S, (r+1)*S)
    rng = np.random.default_rng(a.seed + 1)
    cdf = np.cumsum(rep(p[:, g]).astype(np.float64), axis=-1)
    bonus = np.minimum((cdf < rng.random((R * S, 1)) * cdf[:, -1:]).sum(-1), V - 1)
    import torch

    torch.manual_seed(a.seed)  # vLLM draws its uniforms from torch's global generator
    failed = False
    for label, build, dev in found:
        fn, _ = build(rep(tl), rep(p), rep(q), rep(d), bonus)
        out = np.asarray(fn().cpu()).astype(np.int64)
        k = num_accepted_from_vllm(out)
        y = out[np.arange(R * S), k]
        print(f"\n{label}: {R} rows x {S} samples, gamma={g}, V={V}")
        print("| row | mean accepted (vLLM) | exact (spectheory) | z | chi2 p-value (k, token) |")
        print("|---|---|---|---|---|")
        zs = []
        for r in range(R):
            K = kernels[r]
            law_k = K.sum(-1)
            mean = float(np.arange(g + 1) @ law_k)
            sd = float(np.sqrt((np.arange(g + 1) ** 2) @ law_k - mean**2))
            kr, yr = k[r * S:(r + 1) * S], y[r * S:(r + 1) * S]
            z = (kr.mean() - mean) / (sd / np.sqrt(S))
            chi = chi_square_test(kr * V + yr, K.reshape(-1), alpha=a.alpha)
            zs.append(z)
            ok = abs(z) <= a.z and chi.passed
            failed |= not ok
            flag = "" if ok else " FAIL"
            print(f"| {r} | {kr.mean():.4f} | {mean:.4f} | {z:+.2f} | {chi.p_value:.3g} |{flag}")
        print(f"\nmax |z| = {np.max(np.abs(zs)):.2f} (tolerance {a.z}); chi-squared level {a.alpha}")
    print("\nFAILED" if failed else "\nall rows agree with the exact law")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
