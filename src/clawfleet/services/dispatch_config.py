"""Timing of dispatch: leases, heartbeats and the graces the reaper allows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DispatchConfig:
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 2.0
    # A run the runner does not report as active this long after its claim is lost.
    claim_grace_seconds: float = 5.0
    # How long past its deadline a run may stay before the reaper fails it itself.
    deadline_grace_seconds: float = 10.0
