"""Build (and execute) notebooks/acceptance_bounds.ipynb with nbformat / nbclient.

    .venv/bin/python notebooks/build_acceptance_bounds.py           # build + execute + save
    .venv/bin/python notebooks/build_acceptance_bounds.py --no-run  # build only
"""

from __future__ import annotations

import argparse
import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "acceptance_bounds.ipynb"

CELLS = [
    new_markdown_cell(
        r"""# Optimal acceptance bounds

For a draft law $Q$ over tuples of $n$ drafts from $q$, no lossless verifier accepts more often than

$$\alpha^*(p, Q) = \min_{H \subseteq V}\big[\,p(H) + 1 - Q(\text{all drafts} \in H)\big]$$

(Hu et al., *Towards Optimal Multi-draft Speculative Decoding*, ICLR 2025). `spectheory.bounds.optimal_acceptance`
computes it by a prefix scan over the tokens sorted by $p/q$ for three families of draft laws: i.i.d. drafts,
drafts without replacement and Hu et al.'s greedy drafts. A draft scheme is passed as a `spectheory.DraftScheme`
(e.g. `spectheory.drafts.IID`) or its registered name; the bound dispatches on the scheme's set-law `family`.
This notebook shows how $\alpha^*$ grows with the number of drafts, how temperature moves it, what vocabulary
trimming of the drafter costs, and (once the multi-draft verifiers land) how far each verifier is from its bound."""
    ),
    new_code_cell(
        """%matplotlib inline
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import matplotlib.pyplot as plt
import spectheory
from spectheory import bounds

plt.rcParams.update({"figure.figsize": (4.8, 3.0), "figure.dpi": 64, "font.size": 8, "legend.fontsize": 7})
# the draft schemes with a closed-form bound: every registered scheme with a known set-law family
# except SpecHub's hub drafts (n = 2 only; their draft set has the greedy n = 2 law)
SCHEMES = [spectheory.drafts.IID, spectheory.drafts.WITHOUT_REPLACEMENT, spectheory.drafts.GREEDY]


def laws(V=1000, batch=16, temperature=1.0, noise=1.0, seed=0):
    \"\"\"LLM-like target/draft pairs: Gaussian logits, the drafter's perturbed, both at `temperature`.\"\"\"
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, V)) * 3.0
    draft_logits = logits + noise * rng.standard_normal((batch, V))
    p = jax.nn.softmax(jnp.asarray(logits) / temperature, axis=-1)
    q = jax.nn.softmax(jnp.asarray(draft_logits) / temperature, axis=-1)
    return p, q"""
    ),
    new_markdown_cell(
        """## 1. More drafts

Mean $\\alpha^*$ over 16 positions ($V = 1000$). Drafts without replacement never repeat a token and dominate i.i.d.
drafts; greedy drafts fix the $n-1$ most likely tokens and sample only the last one."""
    ),
    new_code_cell(
        """p, q = laws()
ns = np.array([1, 2, 3, 4, 6, 8])
curves = {s.name: [float(bounds.optimal_acceptance(p, q, int(n), s).value.mean()) for n in ns] for s in SCHEMES}
fig, ax = plt.subplots()
for s, c in curves.items():
    ax.plot(ns, c, marker="o", label=s)
ax.set_xlabel("number of drafts n"); ax.set_ylabel("mean optimal acceptance α*"); ax.legend(); ax.grid(alpha=0.3)
for s in SCHEMES:
    print(f"{s.name:>20}: " + " ".join(f"{v:.4f}" for v in curves[s.name]))"""
    ),
    new_markdown_cell(
        """## 2. Temperature

Both models sampled at the same temperature $T$. Sharper laws (small $T$) make one draft either right or wrong;
flatter laws spread mass, and extra drafts recover more of it."""
    ),
    new_code_cell(
        """temps = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
fig, ax = plt.subplots()
for s, n, style in [("iid", 1, "k-"), ("iid", 4, "C0--"), ("without_replacement", 4, "C1-"), ("greedy", 4, "C2:")]:
    vals = [float(bounds.optimal_acceptance(*laws(temperature=t), n, s).value.mean()) for t in temps]
    ax.plot(temps, vals, style, marker=".", label=f"{s}, n={n}")
ax.set_xlabel("temperature T"); ax.set_ylabel("mean α*"); ax.legend(); ax.grid(alpha=0.3)"""
    ),
    new_markdown_cell(
        """## 3. Vocabulary trimming (VocabTrim)

The drafter keeps only its $m$ most frequent tokens (here: ranked by a corpus frequency, the mean target law over
positions, or by each row of $q$ itself) and renormalises. Single-draft acceptance $\\sum_x \\min(p, q_m)$ and the
optimal 4-draft acceptance as functions of $m$."""
    ),
    new_code_cell(
        """p, q = laws(V=1000, batch=16, seed=1)
ms = np.unique(np.geomspace(1, 1000, 12).astype(int))
corpus = jnp.mean(p, axis=0)  # a stand-in for token counts over a corpus
single_own = bounds.trimmed_acceptance(p, q, ms).mean(0)
single_corpus = bounds.trimmed_acceptance(p, q, ms, frequency=corpus).mean(0)
ms4 = ms[ms >= 4]  # four distinct drafts need at least four kept tokens
multi = bounds.trimmed_optimal_acceptance(p, q, 4, ms4, "without_replacement").mean(0)
fig, ax = plt.subplots()
ax.semilogx(ms, single_own, "o-", label="1 draft, rank by q")
ax.semilogx(ms, single_corpus, "s--", label="1 draft, rank by corpus")
ax.semilogx(ms4, multi, "^-", label="α*, 4 drafts w/o replacement")
ax.set_xlabel("kept vocabulary m"); ax.set_ylabel("mean acceptance"); ax.legend(); ax.grid(alpha=0.3)"""
    ),
    new_markdown_cell(
        """## 4. Three routes to the same number

On a small vocabulary the prefix scan agrees with brute force over all $2^V$ subsets and with the exact transport
LP (POT's network simplex). The draft laws are enumerated here in a few lines."""
    ),
    new_code_cell(
        """import itertools

def iid_law(q, n):
    t = np.array(list(itertools.product(range(len(q)), repeat=n)))
    w = np.prod(q[t], axis=1)
    return t[w > 0], w[w > 0]

def wor_law(q, n):
    t, w = [], []
    for tup in itertools.permutations(range(len(q)), n):
        rem, pr = np.ones(len(q), bool), 1.0
        for x in tup:
            pr, rem[x] = pr * q[x] / q[rem].sum(), False
        t.append(tup); w.append(pr)
    t, w = np.array(t), np.array(w)
    return t[w > 0], w[w > 0]

rng = np.random.default_rng(0)
ps, qs = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
for name, law in [("iid", iid_law), ("without_replacement", wor_law)]:
    for n in (2, 3):
        t, w = law(qs, n)
        print(f"{name:>20} n={n}: scan {float(bounds.optimal_acceptance(ps, qs, n, name).value):.10f}"
              f"  subsets {bounds.subset_bound(ps, t, w).value:.10f}  LP {bounds.lp_acceptance(ps, t, w).value:.10f}")"""
    ),
    new_markdown_cell(
        """## 5. Speed model

With a per-token acceptance $\\alpha$ the expected tokens per target call are $(1-\\alpha^{\\gamma+1})/(1-\\alpha)$
(Leviathan et al.); with draft/target cost ratio $c$ the best integer draft length $\\gamma^*$ follows."""
    ),
    new_code_cell(
        """alphas = np.array([0.5, 0.7, 0.8, 0.9, 0.95])
for c in (0.02, 0.1):
    res = bounds.optimal_gamma(jnp.asarray(alphas), c)
    print(f"c={c}: " + ", ".join(f"α={a:.2f}: γ*={int(g)} ({float(i):.2f}x)" for a, g, i in zip(alphas, res.gamma, res.improvement)))
print("tokens per call at α=0.75, γ=7:", round(float(bounds.expected_tokens_per_call(0.75, 7)), 4))"""
    ),
    new_markdown_cell(
        """## 6. Gap of each verifier to its bound  *(placeholder until the multi-draft rules land)*

For every registered rule and number of drafts it supports, the exact audit's acceptance is compared with
$\\alpha^*$ for the rule's own draft law (the exact LP on `rule.drafts.law(q, n)`). This cell needs
`spectheory.audit.exact`, which lands on main soon; until then it only reports that the audit is missing."""
    ),
    new_code_cell(
        """# GAP-TO-BOUND CELL: keep this cell; it activates once spectheory.audit.exact exists.
rng = np.random.default_rng(2)
V = 5
p_small, q_small = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
if hasattr(spectheory.audit, "exact"):
    rows = []
    for name in spectheory.rules():
        rule = spectheory.rule(name)
        for n in range(1, 5):
            if not rule.supports(n, V):
                continue
            acc = float(spectheory.audit.exact(rule, p_small, q_small, n).acceptance)
            tuples, probs = rule.drafts.law(q_small, n)
            bound = bounds.lp_acceptance(p_small, tuples, probs).value
            rows.append((name, n, acc, bound, bound - acc))
    print(f"{'rule':>20} {'n':>2} {'acceptance':>11} {'alpha*':>9} {'gap':>9}")
    for name, n, acc, bound, gap in rows:
        print(f"{name:>20} {n:>2} {acc:11.6f} {bound:9.6f} {gap:9.2e}")
else:
    print("spectheory.audit.exact is not available yet: the verifier/bound gap table will appear here.")"""
    ),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-run", action="store_true", help="write the notebook without executing it")
    args = ap.parse_args()
    nb = build()
    if not args.no_run:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
