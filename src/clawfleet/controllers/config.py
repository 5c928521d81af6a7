"""The agent controller's settings: its timings, and how it launches runners.

Built once by the composition root (``server.py``) from the settings tree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class AgentControllerConfig:
    server_url: str
    runner_command: tuple[str, ...]
    base_env: Mapping[str, str]
    lost_after: float = 15.0  # seconds without a heartbeat
    start_timeout: float = 60.0  # seconds from launch to register
    drain_timeout: float = 30.0  # seconds a stopping instance may finish its runs
    stop_grace: float = 5.0
    sleeping_idle: float = 30.0  # idle seconds before a woken Sleeping agent sleeps again
    stopped_retention: float = 3600.0  # seconds a stopped instance's logs stay readable
    # Instances launched and not registered yet, across all agents: past it, new instances wait
    # for the next passes, so `replicas: 1000` starts in steps, not as 1000 processes at once.
    max_starting: int = 20
