"""Run in a subprocess with 8 simulated CPU devices (XLA_FLAGS set by the caller)."""

import jax
import jax.numpy as jnp
import numpy as np

import spectheory
from spectheory.parallel import batch_mesh, sharded_vmap
from spectheory.verify import chain, chain_from_logits

assert len(jax.devices()) == 8, jax.devices()
mesh = batch_mesh()
B, g, V = 20, 3, 40  # 20 is not a multiple of 8: exercises the padding
key = jax.random.key(0)
tl = jax.random.normal(key, (B, g + 1, V)) * 2
dl = tl[:, :g] + jax.random.normal(jax.random.key(1), (B, g, V))
p, q = jax.nn.softmax(tl), jax.nn.softmax(dl)
d = jax.random.categorical(jax.random.key(2), dl).astype(jnp.int32)
keys = jax.random.split(jax.random.key(3), B)

ref = jax.jit(jax.vmap(chain))(keys, p, q, d)
out = sharded_vmap(chain, mesh)(keys, p, q, d)
np.testing.assert_array_equal(np.asarray(out.tokens), np.asarray(ref.tokens))
np.testing.assert_array_equal(np.asarray(out.num_accepted), np.asarray(ref.num_accepted))

B2 = 16
out2 = sharded_vmap(chain_from_logits, mesh)(keys[:B2], tl[:B2], dl[:B2], d[:B2])
assert len(out2.tokens.sharding.device_set) == 8, out2.tokens.sharding
ref2 = jax.vmap(chain_from_logits)(keys[:B2], tl[:B2], dl[:B2], d[:B2])
np.testing.assert_array_equal(np.asarray(out2.tokens), np.asarray(ref2.tokens))

r = spectheory.rule("single")
ver = sharded_vmap(r.verifier.verify, mesh, in_axes=(0, None, None, 0))
p1, q1 = p[0, 0], q[0, 0]
d1 = d[:, :1]
res = ver(keys, p1, q1, d1)
ref3 = jax.vmap(r.verifier.verify, in_axes=(0, None, None, 0))(keys, p1, q1, d1)
np.testing.assert_array_equal(np.asarray(res.token), np.asarray(ref3.token))

bounds = spectheory.bounds
if hasattr(bounds, "optimal_acceptance"):
    f = sharded_vmap(lambda a, b: bounds.optimal_acceptance(a, b, 4, "iid").value, mesh)
    np.testing.assert_allclose(np.asarray(f(p[:, 0], q[:, 0])),
                               np.asarray(bounds.optimal_acceptance(p[:, 0], q[:, 0], 4, "iid").value), rtol=1e-6)
print("SHARDED-OK")
