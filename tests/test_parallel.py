"""Sharded execution over 8 simulated CPU devices equals the single-device result."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory.parallel import batch_mesh, sharded_vmap


def test_eight_simulated_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    script = Path(__file__).with_name("_sharded_script.py")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SHARDED-OK" in res.stdout


def test_single_device_and_errors():
    f = sharded_vmap(lambda x, y: x + y, batch_mesh(), in_axes=(0, None))
    np.testing.assert_allclose(f(jnp.arange(5.0), 1.0), np.arange(5.0) + 1)
    with pytest.raises(ValueError, match="leading axis only"):
        sharded_vmap(lambda x: x, in_axes=(1,))(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="share the batch size"):
        sharded_vmap(lambda x, y: x + y)(jnp.ones(2), jnp.ones(3))
