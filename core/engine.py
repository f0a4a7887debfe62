"""Where the batch stages run: `local` (this process, the embedded default) or `ray` (Ray Data
over the same functions: local Ray capped at `AIGQ_RAY_NUM_CPUS`, or the cluster `RAY_ADDRESS`
names, `ray://host:10001` included). ray is imported inside the functions that use it.

    ensure_ray()
    ray.data.from_pandas(frame).map_batches(...)
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
from urllib.parse import urlparse

from core.config import ConfigError, aigq_home
from core.errors import AigqError

ENGINES = ("local", "ray")
ENGINE_ENV = "AIGQ_ENGINE"


def engine_name(value: str = "") -> str:
    """The engine a stage runs on: its config value, else $AIGQ_ENGINE, else `local`."""
    name = value or os.environ.get(ENGINE_ENV, "") or "local"
    if name not in ENGINES:
        source = f"engine={value}" if value else f"{ENGINE_ENV}={name}"
        raise ConfigError(f"{source}: unknown engine; choose one of {', '.join(ENGINES)}")
    return name


def ray_num_cpus() -> int:
    """CPUs local Ray may use: $AIGQ_RAY_NUM_CPUS, default 2 (Ray takes every core otherwise)."""
    raw = os.environ.get("AIGQ_RAY_NUM_CPUS", "2")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"AIGQ_RAY_NUM_CPUS={raw!r}: expected a whole number of CPUs >= 1")
    return n


def check_ray_address(address: str | None = None) -> None:
    """Fail in a second with one line when RAY_ADDRESS points at nothing (ray.init would retry
    for a minute and print a page of logs). Stages call it before any work."""
    address = os.environ.get("RAY_ADDRESS", "") if address is None else address
    if address in ("", "auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise AigqError(f"RAY_ADDRESS={address!r}: expected host:port or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as e:
        raise AigqError(f"RAY_ADDRESS={address}: no Ray cluster answers there ({e.strerror or e})") from None


def ensure_ray() -> None:
    """Ray for the stages of this process: joined if already running, else started (local,
    capped) or connected ($RAY_ADDRESS) once, and shut down at exit. Not shut down after each
    stage: a second `ray.init` in one process races the first session's threads. One Ray
    session may serve stages on several homes: what a worker needs of this process's settings
    travels with each stage (`stage_env`), not with the session."""
    import ray

    if not ray.is_initialized():
        _start_ray()


def stage_env() -> dict[str, str]:
    """This process's AIGQ_* settings ($AIGQ_HOME, the store's AIGQ_REDIS and
    AIGQ_PG_REGISTRY_URL, ...), for a Ray actor to apply before it opens the feature store."""
    return {**{k: v for k, v in os.environ.items() if k.startswith("AIGQ_")}, "AIGQ_HOME": str(aigq_home())}


def _start_ray() -> None:
    import ray
    import ray.data

    address = os.environ.get("RAY_ADDRESS", "")
    if address:
        check_ray_address(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise AigqError(f"RAY_ADDRESS={address}: cannot join the Ray cluster ({first_line})") from None
    else:
        ray.init(
            num_cpus=ray_num_cpus(),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    atexit.register(ray.shutdown)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the stages show their own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
