"""The validating front door: clear ValueErrors naming the argument and the fault."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory.audit import exact
from spectheory.verify import SINGLE, chain, chain_from_logits

P = np.array([0.5, 0.3, 0.2])
Q = np.array([0.2, 0.3, 0.5])
D = np.array([1])


@pytest.mark.parametrize(
    "p,q,d,match",
    [
        (np.array([0.5, np.nan, 0.5]), Q, D, "p: contains NaN"),
        (P, np.array([0.5, np.inf, 0.5]), D, "q: contains NaN or inf"),
        (np.array([1.2, -0.2, 0.0]), Q, D, "p: contains negative"),
        (np.array([0.5, 0.3, 0.3]), Q, D, "p: does not sum to 1"),
        (P, np.array([0.5, 0.5]), D, "same vocabulary size"),
        (P, Q, np.array([3]), r"drafts: token id out of range"),
        (P, Q, np.array([-1]), r"drafts: token id out of range"),
        (P, Q, np.array([0.5]), "drafts: expected integer"),
        (P, Q, np.array([0, 1]), "drafts: expected length 1"),
        (P[None], Q, D, "p: expected a 1-d array"),
        (np.array([]), np.array([]), D, "non-empty"),
    ],
)
def test_bad_inputs(p, q, d, match):
    with pytest.raises(ValueError, match=match):
        SINGLE.verify(jax.random.key(0), p, q, d)
    with pytest.raises(ValueError, match=match):
        SINGLE.kernel(p, q, d)


def test_bad_uniforms():
    with pytest.raises(ValueError, match="uniforms: expected shape"):
        SINGLE.verify_with_uniforms(np.array([0.5]), P, Q, D)
    with pytest.raises(ValueError, match=r"uniforms: values must lie in \[0, 1\)"):
        SINGLE.verify_with_uniforms(np.array([0.5, 1.0]), P, Q, D)


def test_float32_sum_tolerance_is_documented():
    # a float32 softmax over a large vocabulary does not sum to exactly 1; 1e-4 is allowed
    p = np.full(1000, 1e-3, np.float32) * np.float32(1 + 5e-5)
    SINGLE.kernel(p, p, np.array([0]))
    with pytest.raises(ValueError, match="does not sum to 1"):
        SINGLE.kernel(p * np.float32(1.01), p, np.array([0]))


def test_chain_shapes():
    p = np.full((3, 4), 0.25)
    q = np.full((2, 4), 0.25)
    with pytest.raises(ValueError, match="gamma\\+1 = 3 rows"):
        chain(jax.random.key(0), p[:2], q, np.array([0, 1]))
    with pytest.raises(ValueError, match="drafts: expected length 2"):
        chain(jax.random.key(0), p, q, np.array([0]))
    with pytest.raises(ValueError, match="temperature"):
        chain_from_logits(jax.random.key(0), np.zeros((3, 4)), np.zeros((2, 4)), np.array([0, 1]), temperature=-1.0)
    with pytest.raises(ValueError, match="target_logits: contains NaN"):
        chain_from_logits(jax.random.key(0), np.full((3, 4), np.nan), np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="entirely -inf"):
        chain_from_logits(jax.random.key(0), np.full((3, 4), -np.inf), np.zeros((2, 4)), np.array([0, 1]))


def test_audit_errors():
    r = spectheory.rule("single")
    with pytest.raises(ValueError, match="not defined for n=2"):
        exact(r, P, Q, 2)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        exact(r, P, Q, 0)
    with pytest.raises(ValueError, match="name: unknown rule .nope."):
        spectheory.rule("nope")


def test_jit_path_skips_value_checks_but_never_nans():
    """Under jit only shapes are checked; legal edge cases still give finite results."""
    q = jnp.array([0.0, 0.0, 1.0])
    K = jax.jit(SINGLE.kernel)(q, q, jnp.array([2]))
    np.testing.assert_allclose(K, [0.0, 0.0, 1.0])


def test_registry_rejects_duplicates():
    r = spectheory.rule("single")
    with pytest.raises(ValueError, match="already registered"):
        spectheory.register(r)
    with pytest.raises(TypeError):
        spectheory.register(("single", None, None))


def test_traced_uniforms_outside_the_unit_interval_become_nan():
    """Under jit check_uniforms cannot raise: one bad uniform turns them all into NaN, so no
    coin passes and the sampler flags -1 (valid ones pass unchanged)."""
    from spectheory import _validation as _v

    f = jax.jit(lambda u: _v.check_uniforms(u, 3))
    np.testing.assert_array_equal(f(jnp.array([0.1, 0.0, 0.9])), [0.1, 0.0, 0.9])
    for bad in (1.0, -0.5, np.nan):
        assert np.all(np.isnan(np.asarray(f(jnp.array([0.1, bad, 0.9])))))
    r = jax.jit(SINGLE.verify_with_uniforms)(jnp.array([0.0, 1.5]), P, Q, D)
    assert (int(r.token), int(r.index)) == (-1, -1)


def test_eager_vmap_skips_value_checks_checked_runs_them():
    """Documented: an eager jax.vmap sees tracers and runs no value check; spectheory.checked
    does."""
    p = np.stack([P, np.array([0.5, np.nan, 0.5])])
    keys = jax.random.split(jax.random.key(0), 2)
    out = jax.vmap(SINGLE.verify, in_axes=(0, 0, None, None))(keys, p, Q, D)
    assert np.asarray(out.token).tolist()[1] == -1
    with pytest.raises(ValueError, match="p: contains NaN or inf"):
        spectheory.checked(jax.vmap(SINGLE.verify, in_axes=(0, 0, None, None)))(keys, p, Q, D)
