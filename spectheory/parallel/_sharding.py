"""Sharded batched execution over several devices with ``jax.sharding``."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spectheory import _validation as _v


def batch_mesh(devices: Optional[Sequence] = None, axis_name: str = "batch") -> Mesh:
    """A one-dimensional device mesh whose single axis shards the batch.

    Args:
      devices: the devices to use (default: all of ``jax.devices()``).
      axis_name: the mesh axis name.

    Returns:
      ``jax.sharding.Mesh`` of shape ``(len(devices),)``.

    Raises:
      ValueError: no devices, an entry that is not a ``jax.Device``, a repeated device, or an
        empty or non-string ``axis_name``.

    >>> dict(batch_mesh(jax.devices()[:1]).shape)
    {'batch': 1}
    """
    _check_axis_name(axis_name)
    if devices is None:
        devices = jax.devices()
    try:
        devs = list(devices)
    except TypeError:
        raise ValueError(f"devices: expected a sequence of jax devices, got {devices!r}") from None
    if not devs:
        raise ValueError("devices: need at least one device")
    if not all(isinstance(d, jax.Device) for d in devs):
        raise ValueError(f"devices: expected jax.Device entries (from jax.devices()), got {devs!r}")
    if len(set(devs)) != len(devs):
        raise ValueError("devices: each device may appear only once")
    arr = np.empty(len(devs), dtype=object)
    arr[:] = devs
    return Mesh(arr, (axis_name,))


def _check_axis_name(axis_name) -> str:
    if not isinstance(axis_name, str) or not axis_name:
        raise ValueError(f"axis_name: expected a non-empty string, got {axis_name!r}")
    return axis_name


def _pad_leading(x, size: int):
    n = x.shape[0]
    if n == size:
        return x
    reps = jnp.repeat(x[-1:], size - n, axis=0)
    return jnp.concatenate([x, reps], axis=0)


def sharded_vmap(fn: Callable, mesh: Optional[Mesh] = None, *, in_axes=0, axis_name: str = "batch") -> Callable:
    r"""``jit(vmap(fn))`` with the batch axis sharded over the devices of ``mesh``.

    Arguments mapped by ``in_axes`` (leading axis only, ``0``) are split across devices with
    ``NamedSharding(mesh, PartitionSpec(axis_name))``; arguments with ``in_axes`` ``None`` are
    replicated. A batch whose size is not a multiple of the number of devices is padded by
    repeating its last element, and the padding is dropped from the result, so any batch size
    works. Outputs are sharded the same way (the batch stays distributed). Each device runs the
    same compiled program on its slice: the path from one CPU to multi-GPU sweeps.

    Args:
      fn: a per-example function, e.g. :func:`spectheory.verify.chain` or a rule's ``verify``.
      mesh: a one-axis mesh (default :func:`batch_mesh` over all devices).
      in_axes: ``0``/``None`` per positional argument, as for ``jax.vmap`` (leading axis only).
      axis_name: the mesh axis that shards the batch.

    Returns:
      A function of the same arguments as ``jax.vmap(fn, in_axes)``; it raises a
      ``ValueError`` for a wrong number of arguments, an ``in_axes`` entry other than
      ``0``/``None``, mapped arguments of different batch sizes, or an empty batch.

    Raises:
      TypeError: ``fn`` not callable, ``mesh`` not a ``jax.sharding.Mesh``.
      ValueError: a bad ``in_axes`` or an ``axis_name`` that is not an axis of ``mesh``.

    >>> import jax, jax.numpy as jnp
    >>> f = sharded_vmap(lambda x, y: x * y, in_axes=(0, None))
    >>> f(jnp.arange(3.0), 2.0).tolist()
    [0.0, 2.0, 4.0]
    """
    _v.check_callable(fn, "fn")
    _check_axis_name(axis_name)
    mesh = batch_mesh(axis_name=axis_name) if mesh is None else mesh
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh (see batch_mesh), got {type(mesh).__name__}")
    if axis_name not in mesh.shape:
        raise ValueError(f"axis_name: {axis_name!r} is not an axis of the mesh (axes {tuple(mesh.shape)})")
    static_axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,)
    if any(isinstance(a, bool) or a not in (0, None) for a in static_axes):
        raise ValueError(f"in_axes: sharded_vmap maps the leading axis only (0 or None per argument), got {in_axes!r}")
    ndev = mesh.shape[axis_name]
    batched = NamedSharding(mesh, PartitionSpec(axis_name))
    replicated = NamedSharding(mesh, PartitionSpec())
    vfn = jax.vmap(fn, in_axes=in_axes)
    cache: dict = {}

    def call(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"in_axes: {len(axes)} entries for {len(args)} arguments")
        if any(a == 0 and jnp.ndim(x) == 0 for x, a in zip(args, axes)):
            raise ValueError("in_axes: a mapped argument (in_axes 0) needs a leading batch axis, got a scalar")
        sizes = {jnp.shape(x)[0] for x, a in zip(args, axes) if a == 0}
        if len(sizes) != 1:
            raise ValueError(f"in_axes: mapped arguments must share the batch size, got {sorted(sizes)}")
        B = sizes.pop()
        if B == 0:
            raise ValueError("in_axes: the mapped arguments have an empty batch")
        padded = -(-B // ndev) * ndev
        placed = []
        for x, a in zip(args, axes):
            if a == 0:
                placed.append(jax.device_put(_pad_leading(x, padded), batched))
            else:
                placed.append(jax.device_put(x, replicated))
        key = tuple(axes)
        if key not in cache:
            shardings = tuple(batched if a == 0 else replicated for a in axes)
            cache[key] = jax.jit(vfn, in_shardings=shardings, out_shardings=batched)
        out = cache[key](*placed)
        return jax.tree_util.tree_map(lambda y: y[:B], out) if padded != B else out

    return call
