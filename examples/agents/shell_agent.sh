#!/bin/sh
# An example agent for the `command` adapter (text protocol, per-run mode).
#
# The task's prompt is a shell command: the agent runs it in its working directory. Every line
# the command prints becomes a `message` event, the whole output is the run's result, and a
# non-zero exit code fails the run (failureKind `agent-exited`).
#
#   spec:
#     adapter: command
#     command: ["sh", "/path/to/examples/agents/shell_agent.sh"]
#     config: {protocol: text}
set -eu
task=$(cat)                  # the driver writes the prompt, then closes stdin
[ -n "$task" ] || { echo "empty task: send a shell command as the prompt" >&2; exit 2; }
exec sh -c "$task" </dev/null
