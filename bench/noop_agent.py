#!/usr/bin/env python3
"""The no-op agent of the dispatch benchmark: a long-lived JSONL program (stdlib only).

Run by the `command` adapter with ``config: {protocol: jsonl, mode: long-lived}``. It answers
every ``input`` line at once with a ``result`` line that names the run, and ignores everything
else (cancel, steer), so a run costs the control plane and the runner nothing but dispatch. The
output is the wall-clock time at which the input was read, so the benchmark can measure send →
agent on the same clock as the Celery baseline's send → task start.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    read = sys.stdin.buffer.readline
    out = sys.stdout.buffer
    while line := read():
        received = time.time()
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("type") == "input":
            output = {"receivedAt": received}
            answer = {"type": "result", "runId": doc.get("runId"), "output": output}
            out.write(json.dumps(answer).encode() + b"\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
