"""Where batch work runs: in this process (``local``) or on a Ray actor pool (``ray``).

Every batch command (``bias-audit`` for CrowS-Pairs and StereoSet, ``seat``, ``audit-matrix``) takes
``--engine local|ray``, ``--address ADDR``, ``--num-gpus-per-actor G`` and ``--actors N`` and sends its
per-item scoring through :func:`map_items`::

    scores = map_items(factory, items, engine, shard_size=32, progress=bar.update, local_fn=fn)

``factory`` is a picklable callable (a frozen dataclass: model id, device, batch size...) that returns
``fn(shard: list[item]) -> list[result]``; each Ray actor calls it once (so it loads the model once) and then
scores shards. Items are cut into shards of ``shard_size`` *whatever the engine*, so the local run and the
Ray run score exactly the same batches (same padding) and give the same numbers; results come back in
the original order.

Ray is an extra (``pip install 'llmviz[ray]'``). ``--address`` unset starts a private local Ray bound to
127.0.0.1 (no dashboard, no usage stats); ``auto`` or ``ray://host:port`` joins an existing cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from llmviz.errors import LlmvizError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
RAY_PIN = "ray==2.60.0"
RAY_HINT = (
    "--engine ray needs Ray, which is not installed. Install the extra: pip install 'llmviz[ray]' "
    f"(from a checkout: .venv/bin/pip install -e '.[ray]', or pip install '{RAY_PIN}')."
)
# Keep a local Ray on this machine: no usage reports, no dashboard, no log shipping to a cluster service.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
}
LOCAL_OBJECT_STORE = 256 * 2**20  # bytes; shards and results are small


class EngineError(LlmvizError):
    """The engine cannot run (Ray missing, cluster unreachable, bad settings)."""


@dataclass(frozen=True)
class Engine:
    """How to run: ``kind`` local|ray; ``address`` None = start a local Ray, else ``auto`` / ``ray://h:p``;
    ``actors`` None = one per CPU (local Ray) or per cluster CPU / GPU; ``num_cpus`` of a local Ray."""

    kind: str = "local"
    address: str | None = None
    num_gpus_per_actor: float = 0.0
    actors: int | None = None
    num_cpus: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.kind,
            "address": self.address,
            "num_gpus_per_actor": self.num_gpus_per_actor,
            "actors": self.actors,
        }


LOCAL = Engine()


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """--engine, --address, --num-gpus-per-actor, --actors, --ray-cpus on a batch command's parser."""
    g = parser.add_argument_group("engine (where the scoring runs)")
    g.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local (this process, default) or ray (an actor pool; pip install 'llmviz[ray]')",
    )
    g.add_argument(
        "--address",
        default=None,
        help="with --engine ray: unset = start a local Ray on 127.0.0.1; 'auto' or ray://HOST:PORT = "
        "an existing cluster",
    )
    g.add_argument(
        "--num-gpus-per-actor",
        type=float,
        default=0.0,
        help="GPUs each Ray actor reserves (e.g. 1 with --device cuda on a GPU cluster; default 0)",
    )
    g.add_argument(
        "--actors",
        type=int,
        default=None,
        help="Ray actors (each loads the model once); default: one per CPU, or per GPU with --num-gpus-per-actor",
    )
    g.add_argument("--ray-cpus", type=int, default=None, help="CPUs of a local Ray (default: all of this machine)")


def from_args(args: argparse.Namespace) -> Engine:
    kind = getattr(args, "engine", "local") or "local"
    if kind not in ENGINES:
        raise EngineError(f"Unknown engine '{kind}'; use {' or '.join(ENGINES)}.")
    gpus = float(getattr(args, "num_gpus_per_actor", 0.0) or 0.0)
    actors = getattr(args, "actors", None)
    cpus = getattr(args, "ray_cpus", None)
    if gpus < 0 or (actors is not None and actors < 1) or (cpus is not None and cpus < 1):
        raise EngineError("--num-gpus-per-actor must be >= 0, --actors and --ray-cpus at least 1.")
    address = getattr(args, "address", None)
    if kind == "local" and (address or gpus or actors):
        log.warning("--address, --num-gpus-per-actor and --actors only apply with --engine ray")
    return Engine(kind, address or None, gpus, actors, cpus)


def shards(items: Sequence[Any], shard_size: int) -> list[list[Any]]:
    if shard_size < 1:
        raise EngineError("shard_size must be at least 1.")
    return [list(items[i : i + shard_size]) for i in range(0, len(items), shard_size)]


def map_items(
    score_fn_factory: Callable[[], Callable[[list], list]],
    items: Sequence[Any],
    engine: Engine | None = None,
    *,
    shard_size: int = 32,
    progress: Callable[[int], None] | None = None,
    local_fn: Callable[[list], list] | None = None,
    on_shard: Callable[[list], None] | None = None,
) -> list[Any]:
    """``fn(shard)`` over ``items`` cut into shards of ``shard_size``; one result per item, in order.

    ``local_fn``: with the local engine, use this scorer (e.g. over a model already loaded here) instead of
    calling ``score_fn_factory()``. ``progress(n)`` hears the items of each finished shard; ``on_shard(results)``
    then gets that shard's results, shards in order, as soon as they are in (e.g. to save them as they come).
    """
    engine = engine or LOCAL
    parts = shards(items, shard_size)
    if not parts:
        return []
    if engine.kind == "local":
        fn = local_fn or score_fn_factory()
        out: list[Any] = []
        for part in parts:
            res = _checked(fn(part), part)
            out += res
            if progress:
                progress(len(part))
            if on_shard:
                on_shard(res)
        return out
    return _map_ray(score_fn_factory, parts, engine, progress, on_shard)


def _checked(res: Sequence[Any], part: Sequence[Any]) -> list[Any]:
    res = list(res)
    if len(res) != len(part):
        raise EngineError(f"A scorer returned {len(res)} results for {len(part)} items.")
    return res


# ---------------------------------------------------------------- Ray


def import_ray():
    try:
        import ray
    except ImportError as err:
        raise EngineError(RAY_HINT) from err
    return ray


def _checkout_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def ensure_ray(engine: Engine):
    """Start or join Ray once per process (later calls reuse it). Returns the ``ray`` module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)
    # Workers import llmviz from this checkout even when it is not pip-installed.
    path = os.environ.get("PYTHONPATH", "")
    if _checkout_root() not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_checkout_root(), path) if p)
    addr = engine.address
    if addr in (None, "", "local"):
        # A private one-node Ray: its node address is the loopback, so its processes talk over 127.0.0.1
        # (Ray otherwise picks the machine's routable address). Its gRPC servers still listen on all
        # interfaces, behind Ray's token authentication.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        try:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
        except (ImportError, AttributeError):  # pragma: no cover - Ray internals moved
            log.warning("could not pin the local Ray to 127.0.0.1")
    try:
        if addr in (None, "", "local"):
            ray.init(
                num_cpus=engine.num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                object_store_memory=LOCAL_OBJECT_STORE,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(address=addr, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = "a local Ray" if addr in (None, "", "local") else f"the Ray cluster at '{addr}'"
        raise EngineError(f"Could not start or reach {where}: {str(err).splitlines()[0][:200]}") from err
    return ray


def shutdown() -> None:
    """Stop the Ray this process started (no-op when Ray is missing or not running)."""
    try:
        import ray
    except ImportError:
        return
    _drop_actors()
    if ray.is_initialized():
        ray.shutdown()


def _drop_actors() -> None:
    import ray

    for actors in _ACTORS.values():
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # already gone
                pass
    _ACTORS.clear()


class _Worker:
    """Body of a Ray actor: builds a scorer once per factory (loads the model), then scores shards with it.

    Actors outlive one map_items call (their processes have torch imported already); a new factory (another
    model or benchmark) replaces the previous scorer, so an actor holds one model at a time."""

    def __init__(self):
        self.key, self.fn = None, None

    def run(self, key, factory, part, threads=None):
        if threads:  # same torch thread count as the driver: CPU reductions (and so the scores) then match bit for bit
            import torch

            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        if key != self.key:
            self.key, self.fn = None, None  # free the previous model before loading the next
            self.fn = factory()
            self.key = key
        return _checked(self.fn(part), part)


_ACTORS: dict[float, list[Any]] = {}  # GPUs per actor -> live actors of this process's Ray


def _n_actors(ray, engine: Engine, n_parts: int) -> int:
    if engine.actors:
        return min(engine.actors, n_parts)
    res = ray.cluster_resources()
    if engine.num_gpus_per_actor > 0:
        n = int(res.get("GPU", 0) // engine.num_gpus_per_actor)
        if n < 1:
            raise EngineError(
                f"The Ray cluster has {res.get('GPU', 0):g} GPU(s); "
                f"--num-gpus-per-actor {engine.num_gpus_per_actor:g} leaves no room for an actor."
            )
    else:
        n = int(res.get("CPU", 1))
    return max(1, min(n, n_parts))


def _map_ray(
    factory,
    parts: list[list[Any]],
    engine: Engine,
    progress: Callable[[int], None] | None,
    on_shard: Callable[[list], None] | None = None,
) -> list[Any]:
    ray = ensure_ray(engine)
    from ray import cloudpickle
    from ray.exceptions import RayActorError, RayTaskError
    from ray.util import ActorPool

    n = _n_actors(ray, engine, len(parts))
    gpus = float(engine.num_gpus_per_actor or 0)
    live = _ACTORS.setdefault(gpus, [])
    if len(live) < n:
        Remote = ray.remote(num_cpus=1, num_gpus=gpus)(_Worker)
        live += [Remote.remote() for _ in range(n - len(live))]
    actors = live[:n]
    blob = cloudpickle.dumps(factory)
    key = hashlib.sha256(blob).hexdigest()
    factory_ref = ray.put(factory)
    torch = sys.modules.get("torch")  # the driver's torch thread count, when it has torch loaded
    threads = torch.get_num_threads() if torch is not None else None
    out: list[Any] = []
    try:
        pool = ActorPool(actors)
        for part, res in zip(
            parts, pool.map(lambda a, p: a.run.remote(key, factory_ref, p, threads), parts), strict=True
        ):
            out += res
            if progress:
                progress(len(part))
            if on_shard:
                on_shard(list(res))
    except RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, LlmvizError):
            raise cause from None
        raise EngineError(
            f"A Ray worker failed: {type(cause or err).__name__}: {str(cause or err).splitlines()[0][:300]}"
        ) from err
    except RayActorError as err:
        _drop_actors()
        raise EngineError(f"A Ray worker died ({type(err).__name__}); see the Ray logs.") from err
    return out
