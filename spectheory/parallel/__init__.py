"""Sharded execution of the batched verifiers and bounds over several devices.

Test on one CPU with simulated devices:
``XLA_FLAGS=--xla_force_host_platform_device_count=8 python ...`` (set before JAX starts).
"""

from spectheory.parallel._sharding import batch_mesh, sharded_vmap

__all__ = ["batch_mesh", "sharded_vmap"]
