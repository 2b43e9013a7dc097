"""A new acceptance rule in one file: keep the draft with the largest p/q, then single-draft
verification against the law of that choice.

Drafts x_1..x_n are i.i.d. from q. Group the tokens into classes of equal ratio p/q, ranked by
the ratio, and keep a draft of the highest class present among the drafts (uniformly at random
among the drafts of that class), x*. Its law is

    r(x) = (F(C)^n - F_(C)^n) q(x) / q(C),   x in class C,

F(C) the q-mass of the classes ranked at or below C, F_(C) the mass ranked strictly below:
the first factor is the law of the highest class among n i.i.d. draws, and given that class,
a uniformly chosen draft of it has law q restricted to it. Then verify x* against r with the
maximal coupling: accept with probability min(1, p(x*)/r(x*)), else emit y ~ norm((p - r)+).
As x* has law r, the output has law p: the rule is lossless (and p == q gives r = q, so it
always accepts). A residual token may still be one of the other drafts, so its acceptance
(the emitted token is among the drafts) is enumerated by `spectheory.audit.exact`. (Khisti
et al., arXiv 2410.18234, factor every optimal multi-draft rule into a selection step and a
single-draft step; this is a simple deterministic selection.)

Importing this file registers the rule "max-ratio": the conformance suite, the exact audits,
`spectheory compare --plugin <this file>`, tree verification and `spectheory.generate` pick it
up with no other change. `spectheory.register` first checks the rule's structure and runs the
exact audit on small seeded cases (n = 1, 2, 3 over 4 tokens), so a rule that is not lossless
is refused here, at registration.
"""

import jax
import jax.numpy as jnp

import spectheory


def selection_law(p, q, n):
    """Law r of the kept draft (float[V]) and the class rank of every token (int32[V])."""
    V = q.shape[0]
    ratio = jnp.where(q > 0, p / jnp.where(q > 0, q, 1), -1.0)  # tokens q never draws rank lowest
    order = jnp.argsort(ratio)
    rs, qs = ratio[order], q[order]
    cls = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32), (rs[1:] != rs[:-1]).astype(jnp.int32)]))
    mass = jax.ops.segment_sum(qs, cls, num_segments=V)  # q(C) of every class
    upto = jnp.cumsum(mass)
    below = jnp.concatenate([jnp.zeros(1, q.dtype), upto[:-1]])
    top = (upto**n - below**n) / jnp.where(mass > 0, mass, 1)  # P(highest class = C) / q(C)
    r = jnp.zeros_like(q).at[order].set(top[cls] * qs)
    rank = jnp.zeros(V, jnp.int32).at[order].set(cls)
    return r, rank


def _ties(p, q, drafts):
    r, rank = selection_law(p, q, drafts.shape[0])
    tied = rank[drafts] == jnp.max(rank[drafts])  # the drafts of the highest class present
    return r, tied


def _residual(p, r):
    w = jnp.maximum(p - r, 0)
    return jnp.where(jnp.sum(w) > 0, w, p)  # no mass only when rejection has probability 0


def _accept_prob(p, r, x):
    return jnp.where(r[x] > 0, jnp.minimum(1, p[x] / jnp.where(r[x] > 0, r[x], 1)), (p[x] > 0).astype(p.dtype))


@jax.jit
def decide(u, p, q, drafts):
    """The rule with explicit uniforms u[3]: u[0] picks among tied drafts, u[1] decides
    acceptance, u[2] draws the residual."""
    r, tied = _ties(p, q, drafts)
    pick = jnp.floor(u[0] * jnp.sum(tied)).astype(jnp.int32)  # the pick-th tied draft
    j = jnp.argmax(tied & (jnp.cumsum(tied) == pick + 1))
    x = drafts[j]
    ok = u[1] * r[x] < p[x]
    w = _residual(p, r)
    c = jnp.cumsum(w)
    last = w.shape[0] - 1 - jnp.argmax(w[::-1] > 0)  # never emit a token of zero weight
    y = jnp.minimum(jnp.sum(c <= u[2] * c[-1]), last)
    token = jnp.where(ok, x, y).astype(jnp.int32)
    return spectheory.VerifyResult(token, jnp.where(ok, j, -1).astype(jnp.int32))


@jax.jit
def kernel(p, q, drafts):
    """Exact law of the emitted token: the mean over tied drafts x of a_x delta_x, plus the
    rejection mass times norm((p - r)+)."""
    r, tied = _ties(p, q, drafts)
    share = tied.astype(p.dtype) / jnp.sum(tied).astype(p.dtype)
    a = share * _accept_prob(p, r, drafts)
    w = _residual(p, r)
    K = jnp.zeros_like(p).at[drafts].add(a)
    return K + (1 - jnp.sum(a)) * w / jnp.sum(w)


MAX_RATIO = spectheory.Rule(
    "max-ratio",
    spectheory.drafts.IID,
    spectheory.make_verifier(decide, kernel, lambda n: 3, name="max-ratio"),
    description="keep the i.i.d. draft of largest p/q, verify against its law (example rule)",
)
spectheory.register(MAX_RATIO)
