"""Acceptance on real conditionals: the shipped byte-level GPT-2s on held-out stdlib text.

1. Per-position target/draft laws ``p_t``, ``q_t`` (V = 257) are collected ONCE: both shipped
   models read fixed windows of held-out CPython stdlib files (files with index % 10 == 9 in
   ``paper_repro/train_models.py``'s sorted list, never trained on).
2. Acceptance of every registered rule (``spectheory.rules()``, so rules added later appear
   automatically) vs the number of drafts n, next to the optimal acceptance alpha* of any
   lossless verifier for i.i.d. drafts, drafts without replacement and greedy drafts
   (``spectheory.bounds.optimal_acceptance``), averaged over positions.
3. Token vs block verification in real generation: mean accepted drafts per target call of
   ``spectheory.generate`` on the same models (same keys), with standard errors.
4. A temperature sweep: single-draft acceptance, alpha*(n = 4, iid) and measured tokens per
   target call of token verification (gamma = 4).

Run:  .venv/bin/python paper_repro/models.py [--positions 256 --windows 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spectheory  # noqa: E402
from spectheory.audit import acceptance  # noqa: E402
from spectheory.bounds import optimal_acceptance  # noqa: E402
from spectheory.drafts import GREEDY, IID, WITHOUT_REPLACEMENT  # noqa: E402
from spectheory.verify import BLOCK, TOKEN  # noqa: E402

NS = (1, 2, 4, 8)
#: The draft schemes whose optimal acceptance alpha* is tabulated (the scheme objects, the one
#: identity of a draft law; their names head the columns).
SCHEMES = (IID, WITHOUT_REPLACEMENT, GREEDY)


def table(rows, headers) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def held_out_windows(num_files=4, windows=3, length=128):
    """Fixed byte windows of held-out stdlib files (offsets 0, 1000, 2000, ... bytes)."""
    from train_models import corpus_files

    files = [f for i, f in enumerate(corpus_files()) if i % 10 == 9][:num_files]
    out, names = [], []
    for f in files:
        data = f.read_bytes()
        for w in range(windows):
            chunk = data[w * 1000: w * 1000 + length]
            if len(chunk) == length:
                out.append(np.frombuffer(chunk, np.uint8).astype(np.int64))
        names.append(f.name)
    return out, names


def collect_logits(tm, dm, windows):
    """Target and draft logits at every position of every window: float64[P, V] each."""
    import torch

    lt, ld = [], []
    with torch.no_grad():
        for w in windows:
            x = torch.tensor(w[None])
            lt.append(tm(x).logits[0].double().numpy())
            ld.append(dm(x).logits[0].double().numpy())
    return np.concatenate(lt), np.concatenate(ld)


def softmax(x, t=1.0):
    if t == 0:
        out = np.zeros_like(x)
        out[np.arange(len(x)), x.argmax(-1)] = 1
        return out
    z = x / t
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def rules_vs_optimal(P, Q, mc_positions):
    rows = []
    for n in NS:
        row = [n]
        for s in SCHEMES:
            try:
                a = np.asarray(optimal_acceptance(P, Q, n, s).value)
                row.append(f"{a.mean():.4f}")
            except ValueError:
                row.append("-")
        for name in spectheory.rules():
            r = spectheory.rule(name)
            if not r.supports(n, P.shape[1]):
                row.append("-")
                continue
            # closed forms on every position; Monte Carlo rules and host-side solvers (the LP
            # optimum) on the first mc_positions; a rule that refuses the size (the LP beyond
            # MAX_LP_VARIABLES at V = 257) gets "-"
            fast = r.verifier.acceptance is not None and not r.verifier.host_only
            m = P.shape[0] if fast else min(mc_positions, P.shape[0])
            try:
                vals = [acceptance(r, P[i], Q[i], n).value for i in range(m)]
            except ValueError:
                row.append("-")
                continue
            row.append(f"{np.mean(vals):.4f}" + ("" if m == P.shape[0] else f" ({m} pos.)"))
        rows.append(row)
    heads = ["n"] + [f"alpha* {s.name}" for s in SCHEMES] + list(spectheory.rules())
    return table(rows, heads)


def token_vs_block(tm, dm, prompts, gammas=(2, 4, 6), new=64, temperature=1.0):
    from spectheory.models import HFCausalLM

    rows = []
    for g in gammas:
        row = [g]
        for verifier in (TOKEN, BLOCK):
            out = spectheory.generate(jax.random.key(g), HFCausalLM(tm), HFCausalLM(dm), prompts, verifier=verifier,
                                      gamma=g, max_new_tokens=new, temperature=temperature)
            acc = np.asarray(out.accepted)
            k = acc[acc >= 0]
            row.append(f"{k.mean():.3f} ± {k.std(ddof=1) / np.sqrt(len(k)):.3f}")
        rows.append(row)
    return table(rows, ["gamma", "token: E[accepted] ± s.e.", "block: E[accepted] ± s.e."])


def temperature_sweep(tm, dm, LT, LD, prompts, temps=(0.0, 0.5, 0.7, 1.0, 1.3), new=64):
    from spectheory.models import HFCausalLM

    rows = []
    for t in temps:
        P, Q = softmax(LT, t), softmax(LD, t)
        single = np.minimum(P, Q).sum(-1).mean()
        a4 = np.asarray(optimal_acceptance(P, Q, 4, IID).value).mean() if t > 0 else float("nan")
        out = spectheory.generate(jax.random.key(int(10 * t)), HFCausalLM(tm), HFCausalLM(dm), prompts, gamma=4,
                                  max_new_tokens=new, temperature=t)
        acc = np.asarray(out.accepted)
        k = acc[acc >= 0]
        pred = sum(single ** i for i in range(0, 5))  # Leviathan: (1 - a^{g+1}) / (1 - a)
        rows.append([f"{t:g}", f"{single:.4f}", f"{a4:.4f}", f"{k.mean() + 1:.3f} ± {k.std(ddof=1) / np.sqrt(len(k)):.3f}",
                     f"{pred:.3f}"])
    return table(rows, ["T", "single-draft acceptance", "alpha* (n=4, iid)", "tokens / target call (token, gamma=4)",
                        "iid prediction (1 - a^5) / (1 - a)"])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=256, help="positions used for the rule table")
    ap.add_argument("--mc-positions", type=int, default=16, help="positions for rules without closed form")
    ap.add_argument("--windows", type=int, default=3)
    a = ap.parse_args(argv)
    from spectheory.models import encode_bytes, load_shipped_models

    t0 = time.time()
    tm, dm = load_shipped_models()
    windows, names = held_out_windows(windows=a.windows)
    LT, LD = collect_logits(tm, dm, windows)
    P, Q = softmax(LT), softmax(LD)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(P), size=min(a.positions, len(P)), replace=False))
    print(f"# Shipped models on held-out stdlib text ({', '.join(names)}): {len(P)} positions, "
          f"{len(idx)} used for the rule table\n")
    print(f"Mean single-draft acceptance sum_x min(p, q) over all positions: {np.minimum(P, Q).sum(-1).mean():.4f}\n")
    print("## Acceptance vs n (T = 1): registered rules next to alpha*\n")
    print(rules_vs_optimal(P[idx], Q[idx], a.mc_positions))
    prompts = [w[:32] for w in windows]
    print("\n## Token vs block verification in spectheory.generate (T = 1, 64 new tokens per prompt)\n")
    print(token_vs_block(tm, dm, prompts))
    print("\n## Temperature sweep\n")
    print(temperature_sweep(tm, dm, LT, LD, prompts))
    print(f"\n(total {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
