"""Training on several GPUs or machines with tf.distribute (no home-made engine).

- one machine, several GPUs: ``MirroredStrategy`` over all of them (each batch split across the
  GPUs, gradients summed);
- several machines (or processes): ``MultiWorkerMirroredStrategy``, the cluster read from
  ``TF_CONFIG`` (``--workers host:port,... --worker-index N`` writes it); each worker streams its
  shard of the bags (donkey_ros/learning/streaming.py) and worker 0, the chief, writes the model;
- otherwise TensorFlow's default strategy (one device).

``--batch-size`` is the global batch: each step consumes that many frames over all replicas.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from donkey_ros.common.errors import ConfigError

DISTRIBUTIONS = ('auto', 'none', 'mirrored', 'multi-worker')
"""``--distribute`` choices (``TrainConfig.distribution``)."""


@dataclass
class Distribution:
    """The strategy of a run and where this process stands in it."""

    strategy: object
    kind: str            # 'default', 'mirrored' or 'multi-worker'
    workers: int = 1
    worker_index: int = 0
    replicas: int = 1

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.worker_index, self.workers

    def describe(self) -> str:
        if self.kind == 'multi-worker':
            return (f'{self.workers} workers (MultiWorkerMirroredStrategy), {self.replicas} '
                    f'replicas; this is worker {self.worker_index}')
        if self.kind == 'mirrored':
            return f'1 worker, {self.replicas} GPUs (MirroredStrategy)'
        return '1 worker, 1 device'

    def sum_over_workers(self, vector):
        """Sums a float vector over the workers (each worker contributes its own)."""
        import numpy as np
        import tensorflow as tf

        strategy = self.strategy
        local = max(1, self.replicas // max(1, self.workers))
        value = tf.constant(np.asarray(vector, np.float32) / local)
        per_replica = strategy.run(lambda: tf.identity(value))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return total.numpy().astype(np.float64)


def write_tf_config(workers: str, index: int) -> None:
    """``--workers host:port,host:port --worker-index N`` -> ``TF_CONFIG`` for this process."""
    hosts = [h.strip() for h in workers.split(',') if h.strip()]
    if len(hosts) < 1 or any(':' not in h for h in hosts):
        raise ConfigError(f"--workers must be host:port,host:port..., got '{workers}'")
    if not 0 <= index < len(hosts):
        raise ConfigError(f'--worker-index {index} is not one of 0..{len(hosts) - 1}')
    os.environ['TF_CONFIG'] = json.dumps({'cluster': {'worker': hosts},
                                          'task': {'type': 'worker', 'index': index}})


def cluster_workers() -> tuple[int, int]:
    """(workers, this worker's index) from ``TF_CONFIG``; (1, 0) when unset."""
    text = os.environ.get('TF_CONFIG', '').strip()
    if not text:
        return 1, 0
    try:
        config = json.loads(text)
        cluster = config.get('cluster', {})
        workers = len(cluster.get('worker', [])) + len(cluster.get('chief', []))
        task = config.get('task', {})
        index = int(task.get('index', 0)) + (1 if task.get('type') == 'worker'
                                             and cluster.get('chief') else 0)
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfigError(f'TF_CONFIG is not valid JSON of a cluster ({error})') from None
    return max(1, workers), index


def multi_worker(kind: str, workers: int) -> bool:
    """Whether a run of distribution ``kind`` with ``workers`` in TF_CONFIG is multi-worker."""
    return kind == 'multi-worker' or (kind == 'auto' and workers > 1)


def data_shard(kind: str) -> tuple[int, int]:
    """(this worker's index, workers) over which the data is split for a run of ``kind``."""
    workers, index = cluster_workers()
    return (index, workers) if multi_worker(kind, workers) else (0, 1)


def make_distribution(kind: str = 'auto') -> Distribution:
    """The strategy for this process: ``auto`` picks multi-worker when ``TF_CONFIG`` names
    several workers, mirrored when several GPUs are visible, else the default strategy.
    Must run before any other TensorFlow op (``MultiWorkerMirroredStrategy`` requires it)."""
    import tensorflow as tf

    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"distribution '{kind}' unknown (valid: {', '.join(DISTRIBUTIONS)})")
    workers, index = cluster_workers()
    if multi_worker(kind, workers):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution(strategy, 'multi-worker', workers, index,
                            strategy.num_replicas_in_sync)
    gpus = tf.config.list_logical_devices('GPU')
    if kind == 'mirrored' or (kind == 'auto' and len(gpus) > 1):
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(strategy, 'mirrored', 1, 0, strategy.num_replicas_in_sync)
    return Distribution(tf.distribute.get_strategy(), 'default')


def prepare_model(distribution: Distribution, model, element_spec) -> None:
    """Makes a compiled Keras 3 model trainable with ``MultiWorkerMirroredStrategy``.

    Keras 3 (up to 3.15 at least) cannot ``fit`` under that strategy (keras-team/keras#20585):
    it reduces the per-replica scalar logs over axis 0, and builds the model by reducing a whole
    data batch at once. Two narrow workarounds, only for multi-worker runs: the logs are averaged
    over the replicas with ``axis=None`` (they are already global: metric variables are synced),
    and the model is built here from the dataset's element spec (shapes only).
    """
    if distribution.kind != 'multi-worker':
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not getattr(tf_trainer.reduce_per_replica, 'donkey_ros_patched', False):
        original = tf_trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            if reduction in ('auto', 'mean') and \
                    tf_trainer._collective_all_reduce_multi_worker(strategy):
                return tree.map_structure(
                    lambda v: strategy.reduce('MEAN', v, axis=None), values)
            return original(values, strategy, reduction)
        reduce_per_replica.donkey_ros_patched = True
        tf_trainer.reduce_per_replica = reduce_per_replica
    with distribution.strategy.scope():
        model._symbolic_build(data_batch=element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
