"""Where the shards run: in this process (``local``) or on a Ray cluster (``ray``: one actor per worker, each loading
the model once and writing its own shards; Ray restarts a dead actor and retries its shard).

The driver only plans and checks; a shard's bytes come from :class:`ShardRunner` alone, so they do not depend on
the executor, the number of workers or the order in which shards finish. With Ray the output folder must be on a
file system that every node sees (workers write into it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import warnings
from pathlib import Path
from typing import Callable, Sequence

from ...backends.loading import load_model
from .planning import Plan, Shard, ShardWork
from .shards import ShardRunner
from .settings import AugmentSettings

EXECUTORS = ("local", "ray")
CRASH_MARKER_ENV = "SEEDSPACE_AUGMENT_CRASH_MARKER"  # fault injection for tests: see ShardActor.run


class AugmentError(RuntimeError):
    """A run that could not finish (a worker kept dying, or failed): its finished shards stay on disk."""


def import_ray():
    """The ray module; ValueError saying how to install it when it is missing."""
    try:
        # Ray is an optional extra, imported only for --executor ray
        import ray
    except ImportError:
        raise ValueError("the ray executor needs Ray, which is not installed: pip install seedspace[ray]") from None
    return ray


class LocalExecutor:
    """Runs the shards one after the other in this process, with the driver's model."""

    name = "local"

    def __init__(self, model):
        self.model = model

    def describe(self) -> dict:
        return {"executor": self.name, "workers": 1}

    def run(self, plan: Plan, out: Path, shards: Sequence[Shard], model_id: str, done: Callable[[int], None]) -> None:
        # one after the other: a writer thread beside the generation measured slower on 2 cores (it competes with
        # the model's threads; docs/performance.md)
        runner = ShardRunner(self.model, out, model_id)
        for shard in shards:
            done(runner.run(plan.work(shard)))


class ShardActor:
    """A Ray worker: loads the model once (in the run's dtype, at its image size), then runs whatever shards it is
    handed."""

    def __init__(self, model_ref: str, device: str, settings: AugmentSettings, out: str, model_id: str):
        model = load_model(model_ref, device=device, dtype=settings.dtype, **settings.model_options)
        self.runner = ShardRunner(model, out, model_id)

    def run(self, work: ShardWork) -> int:
        marker = os.environ.get(CRASH_MARKER_ENV)
        if marker and not Path(marker).exists():  # die once, mid-run, as a crashed worker would
            Path(marker).touch()
            os._exit(1)
        return self.runner.run(work)


class RayExecutor:
    """Shards on Ray: ``workers`` actors with ``cpus_per_worker`` CPUs each (and a GPU each, or an equal share,
    when the cluster has GPUs and ``device`` is not 'cpu'). ``address``: a running cluster to join; else a local
    one with ``workers * cpus_per_worker`` CPUs is started (and stopped at the end). A shard whose actor dies is
    retried up to ``retries`` times on the restarted actor; then the run stops with :class:`AugmentError`. On a
    cluster that was running already, only the workers its CPUs hold at once are started (:meth:`workers_that_fit`;
    ``workers`` then says how many ran)."""

    name = "ray"

    def __init__(self, model_ref: str, workers: int = 1, address: str | None = None, device: str = "auto",
                 cpus_per_worker: int = 1, retries: int = 3, runtime_env: dict | None = None):
        import_ray()
        if workers < 1 or cpus_per_worker < 1:
            raise ValueError(f"workers and cpus per worker must be >= 1, got {workers} and {cpus_per_worker}")
        if not isinstance(model_ref, (str, Path)):
            raise ValueError("the ray executor loads the model in every worker: pass a model reference ('testbed', "
                             "a folder or a cached hub id), not a loaded model")
        if address not in (None, "auto", "local"):
            check_reachable(address)
        self.model_ref, self.workers, self.address, self.device = str(model_ref), workers, address, device
        self.cpus, self.retries, self.runtime_env = cpus_per_worker, retries, runtime_env

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers, "address": self.address,
                "cpus_per_worker": self.cpus, "retries": self.retries}

    def workers_that_fit(self, cpus: float) -> int:
        """The workers a joined cluster of ``cpus`` CPUs holds at once (one warning line where that is fewer than
        asked): an actor waiting for the CPUs another actor of the pool keeps never starts, and its shards, or a
        crashed actor's restart queued behind it, would wait for ever. AugmentError where not even one fits."""
        fit = int(cpus // self.cpus)
        if fit < 1:
            raise AugmentError(f"the ray cluster has {cpus:g} CPUs, fewer than the {self.cpus} each worker reserves "
                               "(the run's threads): lower threads or cpus_per_worker")
        if fit < self.workers:
            warnings.warn(f"the ray cluster has {cpus:g} CPUs: running {fit} worker(s) of {self.cpus} CPUs, not "
                          f"{self.workers}", stacklevel=2)
        return min(fit, self.workers)

    def run(self, plan: Plan, out: Path, shards: Sequence[Shard], model_id: str, done: Callable[[int], None]) -> None:
        ray = import_ray()
        from ray.util import ActorPool  # optional extra, like ray itself

        started = not ray.is_initialized()
        if started:
            with own_signal_handlers():
                ray.init(address=self.address, num_cpus=None if self.address else self.workers * self.cpus,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
        if not started or self.address:  # a cluster this run did not size
            self.workers = self.workers_that_fit(float(ray.cluster_resources().get("CPU", 0)))
        gpus = float(ray.cluster_resources().get("GPU", 0))
        per_worker = min(1.0, gpus / self.workers) if gpus and self.device != "cpu" else 0
        actor = ray.remote(num_cpus=self.cpus, num_gpus=per_worker, max_restarts=self.retries,
                           max_task_retries=self.retries)(ShardActor)
        if self.runtime_env:
            actor = actor.options(runtime_env=self.runtime_env)
        actors = [actor.remote(self.model_ref, self.device, plan.settings, str(out), model_id)
                  for _ in range(self.workers)]
        try:
            works = [plan.work(shard) for shard in shards]
            for count in ActorPool(actors).map_unordered(lambda a, work: a.run.remote(work), works):
                done(count)
        except ray.exceptions.RayTaskError as exc:  # the shard's own code failed: no retry helps
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise AugmentError(f"a ray worker failed: {type(cause).__name__}: {str(cause).strip().splitlines()[-1]}") from None
        except ray.exceptions.RayActorError:
            raise AugmentError(f"a ray worker died running a shard, also after {self.retries} retries; the finished "
                               "shards are kept: resume the run to continue") from None
        finally:
            for a in actors:
                ray.kill(a)
            if started:
                ray.shutdown()


@contextlib.contextmanager
def own_signal_handlers():
    """Keep the process's SIGINT / SIGTERM handlers over the block: ``ray.init`` installs its own, under which
    SIGTERM aborted the driver (exit 134, run.json "failed") instead of unwinding like Ctrl-C (143, "interrupted")."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


ADDRESS_TIMEOUT_S = 3.0


def check_reachable(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """ValueError unless something answers at a Ray address ``HOST:PORT`` (or ``ray://HOST:PORT``) within
    ``timeout`` seconds: ``ray.init`` would otherwise retry for minutes with its own log lines."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not host or not port.isdigit():
        raise ValueError(f"ray address must be HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ValueError(f"nothing answers at ray address {address} ({exc.strerror or type(exc).__name__}, "
                         f"{timeout:g} s); start the cluster there or leave out the address") from None


def make_executor(name: str, model, model_ref: str | None, workers: int = 1, address: str | None = None,
                  device: str = "auto", **ray_options):
    """An executor by name; ValueError for an unknown name, a missing Ray or a loaded model given to Ray."""
    if name == "local":
        if workers != 1 or address:
            raise ValueError("workers and a ray address apply to the ray executor only")
        return LocalExecutor(model)
    if name == "ray":
        return RayExecutor(model_ref if model_ref is not None else model, workers, address, device, **ray_options)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
