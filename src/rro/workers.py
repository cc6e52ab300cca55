"""Chunks of tasks on Ray actors: exploration and evaluation beyond one process and one machine.

The driver (the `rro explore` or `rro eval` process) cuts the pending tasks into chunks and hands
them to `workers` Ray actors; each actor builds its own runner once (its own policy, value
estimator and environments) and runs one chunk at a time. Results come back to the driver, which
alone writes the output files, so files, resumption and reports are the same for 1 worker or 100.

Faults: when an actor dies (its process killed, its node lost), the chunk it held goes back to the
front of the queue and a fresh actor takes the dead one's place; a chunk that kills
`MAX_WORKER_DEATHS_PER_CHUNK` workers in turn stops the run. An ordinary exception inside a chunk
(a bug, a bad model path) is not retried: it is raised on the driver with the worker's traceback.
A killed driver takes its actors with it; rerunning the command resumes from the output files.

Ray is imported only here, and only when `workers > 1`.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from rro.config import ConfigError, EvalConfig, ExploreConfig
from rro.envs.base import Task, spec
from rro.policy import BACKENDS
from rro.policy.models import resolve_model

# A chunk whose worker died this many times in a row is not handed out again.
MAX_WORKER_DEATHS_PER_CHUNK = 3

Runner = Callable[[list[Task]], list[Any]]


class WorkerError(RuntimeError):
    """Workers keep dying on the same chunk, or no worker could be started."""


def pending_chunks(tasks: list[Task], done: set[str], size: int) -> list[list[Task]]:
    """The unfinished tasks of each `size`-task chunk of the whole list, in order."""
    chunks = ([task for task in tasks[first : first + size] if task.id not in done]
              for first in range(0, len(tasks), size))
    return [chunk for chunk in chunks if chunk]


def run_chunks(config: EvalConfig | ExploreConfig, chunks: list[list[Task]], make_runner: Callable[[Any], Runner],
               policy: Any = None) -> Iterator[tuple[list[Task], list[Any]]]:
    """(chunk, results) for every chunk: in this process with one worker (`make_runner(policy)`),
    else on Ray actors (each calls `make_runner(None)` and loads its own policy)."""
    if not chunks:
        return iter(())
    if config.workers == 1:
        runner = make_runner(policy)
        return ((chunk, runner(chunk)) for chunk in chunks)
    if BACKENDS[config.policy_backend].weights_here:
        resolve_model(config.model)  # fetch a named model once here, not in every worker at once
    # The module that registers the environment is imported on every worker (plug-ins included).
    modules = [spec(config.env).make.__module__]
    return run_on_workers(partial(make_runner, None), chunks, config.workers, config.ray_address, config.num_gpus,
                          modules)


class TaskWorker:
    """One Ray actor: a runner built once, then one chunk per call."""

    def __init__(self, make_runner: Callable[[], Runner], threads: int, modules: Sequence[str]):
        import torch

        torch.set_num_threads(threads)  # this worker's share of the machine's cores
        for module in modules:  # e.g. the module that registers a plug-in environment
            importlib.import_module(module)
        self.runner = make_runner()

    def run(self, chunk: list[Task]) -> list[Any]:
        return self.runner(chunk)


def _connect(ray, address: str | None, env_vars: dict[str, str]) -> bool:
    """Join the cluster at `address`, or start a local Ray instance; True when started here.
    A process that is already connected (a notebook, a test module) keeps its connection; an
    address nothing answers at is an error all the same."""
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return False
    runtime_env = {"env_vars": env_vars}
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                   runtime_env=runtime_env)
    try:
        # "local": a new instance even when `ray start` left a cluster on this machine.
        ray.init(address=address or "local", **options)
    except ConnectionError as err:
        raise ConfigError(f"ray_address: cannot join the Ray cluster at {address}: {err}") from None
    return True


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a wrong HOST:PORT: Ray itself retries an unreachable address for minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # another form Ray accepts ("auto", a ray:// address): let Ray judge it
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(f"ray_address: nothing answers at {address} ({err}); start the cluster's head "
                          f"with `ray start --head --port {port}` there") from None


def _forwarded_env() -> dict[str, str]:
    """What workers must see as the driver does: rro's data and cache locations, and the
    driver's import path (so a plug-in environment's module imports there too)."""
    env = {key: value for key, value in os.environ.items() if key.startswith("RRO_")}
    paths = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return env


def run_on_workers(
    make_runner: Callable[[], Runner],
    chunks: Sequence[list[Task]],
    workers: int,
    ray_address: str | None = None,
    num_gpus: float = 0.0,
    modules: Sequence[str] = (),
) -> Iterator[tuple[list[Task], list[Any]]]:
    """Run every chunk on Ray actors; yield (chunk, its results) as chunks finish, in any order.

    `make_runner` is called once inside each actor (it must be picklable: a class and its config);
    `modules` are imported in each actor before it.
    """
    try:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
    except ImportError:
        raise ConfigError("workers > 1 runs on Ray, which is not installed: pip install 'rro[ray]'") from None
    if not chunks:
        return
    started_here = _connect(ray, ray_address, _forwarded_env())
    actors: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, cpus // workers)
        env_vars = {**_forwarded_env(), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        actor_class = ray.remote(TaskWorker).options(
            num_cpus=threads, num_gpus=num_gpus, max_restarts=0, max_task_retries=0,
            runtime_env={"env_vars": env_vars})

        def start_worker():
            actor = actor_class.remote(make_runner, threads, list(modules))
            actors.append(actor)
            return actor

        idle = deque(start_worker() for _ in range(min(workers, len(chunks))))
        pending = deque(range(len(chunks)))
        running: dict[Any, tuple[Any, int]] = {}  # result ref -> (actor, chunk index)
        deaths = [0] * len(chunks)
        while pending or running:
            while idle and pending:
                actor, index = idle.popleft(), pending.popleft()
                running[actor.run.remote(chunks[index])] = (actor, index)
            (ready,), _ = ray.wait(list(running), num_returns=1)
            actor, index = running.pop(ready)
            try:
                results = ray.get(ready)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as err:
                deaths[index] += 1
                if deaths[index] >= MAX_WORKER_DEATHS_PER_CHUNK:
                    raise WorkerError(f"{deaths[index]} workers died running the chunk of tasks "
                                      f"{[t.id for t in chunks[index]]}; the last: {err}") from None
                ray.kill(actor, no_restart=True)
                pending.appendleft(index)  # re-run by the next free worker
                idle.append(start_worker())  # a fresh worker takes the dead one's place
                continue
            deaths[index] = 0
            idle.append(actor)
            yield chunks[index], results
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started_here:
            ray.shutdown()
