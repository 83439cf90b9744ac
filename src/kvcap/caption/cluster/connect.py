"""Reaching a Ray cluster for `kvcap caption --cluster ray`, and leaving it as it was found.

    cluster = connect(cfg.ray.address)     # or starts a local one
    ...
    cluster.close()                          # stops the local cluster only if kvcap started it

Address, in order: `ray.address` (kvcap.toml or `--set`), Ray's own `RAY_ADDRESS`, a cluster
started on this machine with `ray start --head` (Ray's address file), else a new local cluster
with this machine's CPUs and GPUs, which `close` stops. A Ray already initialised in this
process (a notebook, the test session) is used as it is and left running.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from kvcap.errors import KvcapError, one_line

RAY_EXTRA = "pip install 'kvcap[ray]'"


class RayMissingError(KvcapError):
    """`--cluster ray` without Ray installed (one line naming the extra)."""


class RayConnectError(KvcapError):
    """The Ray cluster at the configured address cannot be reached (one line)."""


def require_ray() -> Any:
    """The `ray` module, or RayMissingError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is part of the extra, not of bare `ray`)
    except ImportError:
        raise RayMissingError(
            f"--cluster ray (caption.cluster) needs Ray, an optional extra: {RAY_EXTRA}") from None
    return ray


@dataclass
class Cluster:
    """The Ray cluster a job runs on; `close` stops it only when kvcap started it."""

    address: str
    started_local: bool
    startup_s: float
    resources: dict[str, float] = field(default_factory=dict)
    nodes: int = 1

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    def describe(self) -> dict[str, Any]:
        """job.json's `ray` entry."""
        return {"address": self.address, "started_local": self.started_local, "nodes": self.nodes,
                "cpus": self.cpus, "gpus": self.gpus, "startup_s": round(self.startup_s, 2)}

    def close(self) -> None:
        if self.started_local:
            import ray

            ray.shutdown()  # ends the GCS, raylet and workers this process started


def _will_start_local(address: str | None) -> bool:
    """Whether `ray.init(address)` would start a new local cluster (no RAY_ADDRESS, no `ray start`)."""
    if address:
        return False
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None) is None
    except Exception:  # noqa: BLE001 - Ray moved it: assume a running cluster was found
        return not os.environ.get("RAY_ADDRESS")


def connect(address: str = "", *, num_cpus: int | None = None) -> Cluster:
    """Join (or start) the cluster for a job; see the module docstring for the order."""
    ray = require_ray()
    t0 = time.perf_counter()
    if ray.is_initialized():
        return _described(ray, Cluster(address="(this process)", started_local=False, startup_s=0.0))
    target = address or None
    started_local = _will_start_local(target)
    kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if started_local:
        kwargs.update(include_dashboard=False, num_cpus=num_cpus)
    try:
        ray.init(address=target, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exception when a local node times out
        reason = one_line(exc, first_line=True)
        if started_local:
            raise RayConnectError(f"--cluster ray: cannot start a local Ray cluster ({reason})") from None
        where = f"ray.address {address}" if address else f"RAY_ADDRESS {os.environ.get('RAY_ADDRESS', '')}".strip()
        raise RayConnectError(f"{where}: cannot join the Ray cluster ({reason})") from None
    shown = ray.get_runtime_context().gcs_address if started_local else (address or os.environ.get("RAY_ADDRESS")
                                                                         or "the cluster started by `ray start`")
    return _described(ray, Cluster(address=str(shown), started_local=started_local,
                                   startup_s=time.perf_counter() - t0))


def _described(ray: Any, cluster: Cluster) -> Cluster:
    cluster.resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    cluster.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return cluster
