#!/usr/bin/env python3
"""An example agent for the `command` adapter (JSONL protocol, per-run mode, stdlib only).

It pretends to work through a few stages, reporting progress as it goes. While it works it
listens on stdin: a steer line is acknowledged with a `steer` event and taken into the result; a
cancel line (or SIGTERM, which the runner sends right after it) makes it stop at once.

Input `data` may set {"stages": 4, "stageSeconds": 0.75} to change the pace.
"""

import json
import os
import queue
import signal
import sys
import threading
import time


def emit(**event):
    print(json.dumps(event), flush=True)


def on_sigterm(signum, frame):
    # Raw write and exit: the handler may interrupt a print() in progress.
    os.write(1, b'{"type": "log", "level": "info", "text": "terminated: stopping now"}\n')
    os._exit(143)


def read_stdin(lines):
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)  # stdin closed


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    request = json.loads(sys.stdin.readline())
    prompt, data = request["prompt"], request.get("data") or {}
    stages = int(data.get("stages", 4))
    pause = float(data.get("stageSeconds", 0.75))

    lines = queue.Queue()
    threading.Thread(target=read_stdin, args=(lines,), daemon=True).start()
    steers = []

    emit(type="message", text=f"Working on: {prompt}\n")
    for stage in range(1, stages + 1):
        pct = round(100 * (stage - 1) / stages)
        emit(type="progress", text=f"stage {stage} of {stages}", pct=pct)
        deadline = time.monotonic() + pause
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                continue  # stdin closed; keep working
            command = json.loads(line)
            if command.get("type") == "cancel":
                emit(type="log", level="info", text="cancelled: stopping now")
                return 143
            if command.get("type") == "steer":
                steers.append(command["message"])
                emit(type="steer", message=command["message"])
                emit(type="message", text=f"Steered: {command['message']}\n")
        emit(type="tool_call", name="stage", args={"number": stage})
    emit(type="progress", text="done", pct=100)
    emit(type="usage", inputTokens=len(prompt.split()), outputTokens=stages * 10)
    output = f"Finished {stages} stages for: {prompt}"
    if steers:
        output += " (steered: " + "; ".join(steers) + ")"
    emit(type="result", output=output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
