"""Running prunekit under ``torchrun``: the process group, each rank's data, and collectives
that keep every rank identical (issue #21).

Launch with ``torchrun --nproc_per_node N ...`` (gloo on CPU, NCCL on GPU); prunekit joins
the group (:func:`init_from_env`), shards calibration batches (:func:`shard`), sums raw
statistics across ranks before any score is normalised (:func:`all_reduce_named`), checks
that every rank derived the same plan (:func:`check_same`), and writes files on rank 0
(:func:`main_only`). Without a group every function is a one-process no-op.
"""

from .collectives import (
    all_reduce_named,
    all_reduce_scalars,
    broadcast_object,
    check_same,
    digest,
    mean_across_ranks,
)
from .fsdp import gather_full_weights, is_fully_sharded
from .group import (
    active,
    barrier,
    init_from_env,
    is_main,
    launched_by_torchrun,
    local,
    main_first,
    main_only,
    rank,
    world_size,
)
from .shard import Shard, shard, shard_rows

__all__ = [
    "Shard",
    "active",
    "all_reduce_named",
    "all_reduce_scalars",
    "barrier",
    "broadcast_object",
    "check_same",
    "digest",
    "gather_full_weights",
    "init_from_env",
    "is_fully_sharded",
    "is_main",
    "launched_by_torchrun",
    "local",
    "main_first",
    "main_only",
    "mean_across_ranks",
    "rank",
    "shard",
    "shard_rows",
    "world_size",
]
