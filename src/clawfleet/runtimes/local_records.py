"""What the local runtime keeps on disk for each Instance, and where.

``root/<instance_id>/`` holds ``work/`` (the program's working directory), ``logs/instance.log``
and ``instance.json``. The metadata file is how a restarted control plane finds its processes
again, so it is written atomically, readable only by its owner, and never holds the environment
(which may carry secrets).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from clawfleet.core.errors import PermanentError
from clawfleet.core.paths import ensure_private_dir, write_private_file
from clawfleet.runtimes.base import Observation, State, validate_instance_id
from clawfleet.runtimes.local_process import describe_exit

METADATA_FILE = "instance.json"
LOG_FILE = "instance.log"

_T = TypeVar("_T")


class CorruptRecord(PermanentError):
    """An ``instance.json`` that cannot be read back as an InstanceRecord."""

    code = "corrupt-record"


@dataclass(frozen=True)
class InstancePaths:
    """The files of one Instance under the runtime's root."""

    dir: Path

    @classmethod
    def under(cls, root: Path, instance_id: str) -> InstancePaths:
        return cls(root / validate_instance_id(instance_id))

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def log(self) -> Path:
        return self.logs / LOG_FILE

    @property
    def metadata(self) -> Path:
        return self.dir / METADATA_FILE

    def create(self) -> None:
        """Make the instance, work and log directories (mode 0700). Raises OSError."""
        for directory in (self.dir.parent, self.dir, self.work, self.logs):
            ensure_private_dir(directory)


@dataclass(frozen=True)
class InstanceRecord:
    """One launch of an Instance: enough to find, signal and report on its process later.

    ``exit_code`` follows the shell convention (128 + N when killed by signal N);
    ``finished_at`` is set once the runtime has seen the process gone.
    """

    instance_id: str
    pid: int
    starttime: int  # clock ticks after boot, /proc/<pid>/stat field 22: guards against pid reuse
    command: tuple[str, ...]
    launched_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    finished_at: datetime | None = None
    exit_code: int | None = None
    exit_signal: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.pid}:{self.starttime}"

    def finished(
        self, at: datetime, exit_code: int | None, exit_signal: int | None
    ) -> InstanceRecord:
        return replace(self, finished_at=at, exit_code=exit_code, exit_signal=exit_signal)

    def running(self) -> Observation:
        return Observation(State.RUNNING, started_at=self.launched_at, detail=f"pid {self.pid}")

    def exited(self) -> Observation:
        return Observation(
            State.EXITED,
            exit_code=self.exit_code,
            started_at=self.launched_at,
            finished_at=self.finished_at,
            detail=describe_exit(self.exit_code, self.exit_signal),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "instance_id": self.instance_id,
                "pid": self.pid,
                "starttime": self.starttime,
                "command": list(self.command),
                "launched_at": self.launched_at.isoformat(),
                "labels": dict(self.labels),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "exit_code": self.exit_code,
                "exit_signal": self.exit_signal,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> InstanceRecord:
        """Parse a record; CorruptRecord if any field is missing or of the wrong type."""
        try:
            doc = json.loads(text)
            finished_at = doc["finished_at"]
            record = cls(
                instance_id=_typed(doc["instance_id"], str),
                pid=_typed(doc["pid"], int),
                starttime=_typed(doc["starttime"], int),
                command=tuple(_typed(arg, str) for arg in _typed(doc["command"], list)),
                launched_at=datetime.fromisoformat(_typed(doc["launched_at"], str)),
                labels={
                    _typed(k, str): _typed(v, str) for k, v in _typed(doc["labels"], dict).items()
                },
                finished_at=datetime.fromisoformat(finished_at) if finished_at else None,
                exit_code=_optional(doc["exit_code"], int),
                exit_signal=_optional(doc["exit_signal"], int),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptRecord(f"not an instance record: {exc}") from exc
        return record


def _typed(value: Any, kind: type[_T]) -> _T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional(value: Any, kind: type[_T]) -> _T | None:
    return None if value is None else _typed(value, kind)


def save_record(paths: InstancePaths, record: InstanceRecord) -> None:
    """Write ``instance.json`` atomically (mode 0600). Raises OSError."""
    write_private_file(paths.metadata, record.to_json())


def load_record(paths: InstancePaths) -> InstanceRecord | None:
    """The record in ``paths``, or None if there is none. CorruptRecord / OSError otherwise."""
    try:
        text = paths.metadata.read_text()
    except FileNotFoundError:
        return None
    record = InstanceRecord.from_json(text)
    if record.instance_id != paths.dir.name:
        raise CorruptRecord(f"names instance {record.instance_id!r}, not {paths.dir.name!r}")
    return record


def delete_tree(path: Path) -> None:
    """Remove ``path`` even if the program left read-only directories in it (Go caches do)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except PermissionError:
        for directory, _, _ in os.walk(path):
            os.chmod(directory, 0o700)
        shutil.rmtree(path)
