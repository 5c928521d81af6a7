"""The README's tour, its users and service-account sections and its clean-up, word for word.

The shell blocks are taken from README.md itself and run in order, in one bash, against a real
`clawfleet up` with a private HOME, data dir and port. The terminal is set up the way the
server's start banner says (its `export` lines), and the test types the passwords the CLI prompts
for. Each command must succeed, except the ones the README says are refused; a `# prints: X`
comment must be exactly what the command prints.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, ServerProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

SECTIONS = ("## A five-minute tour", "## Users, roles and tenants", "## Cleaning up")
PASSWORD = "correct horse battery staple"
TYPED = {  # what a user types at the prompts of these commands
    "clawfleet user create alice": f"{PASSWORD}\n{PASSWORD}\n",
    "clawfleet login -u alice": f"{PASSWORD}\n",
}
HEREDOC = re.compile(r"<<-?'?(\w+)'?")
MARK = "@@clawfleet-readme"


@dataclass
class Command:
    text: str  # as in the README, comment included

    @property
    def comment(self) -> str:
        first = self.text.split("\n", 1)[0]
        return first.split("  #", 1)[1].strip() if "  #" in first else ""

    @property
    def prints(self) -> str | None:
        return self.comment.removeprefix("prints: ") if self.comment.startswith("prints:") else None

    @property
    def refused(self) -> bool:
        return self.comment.startswith("refused")

    def typed(self) -> str:
        first = self.text.split("\n", 1)[0]
        return next((answer for cmd, answer in TYPED.items() if first.startswith(cmd)), "")


def readme_commands() -> list[Command]:
    """The commands of the sh blocks in the README's SECTIONS, in order."""
    text = (REPO / "README.md").read_text()
    blocks: list[str] = []
    for part in re.split(r"^(?=## )", text, flags=re.MULTILINE):
        if part.startswith(SECTIONS):
            blocks += re.findall(r"^```sh\n(.*?)^```", part, flags=re.MULTILINE | re.DOTALL)
    commands = []
    for block in blocks:
        lines = iter(block.splitlines())
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            body = [line]
            if match := HEREDOC.search(line.split("  #", 1)[0]):
                for more in lines:
                    body.append(more)
                    if more == match.group(1):
                        break
            commands.append(Command("\n".join(body)))
    return commands


def _script(commands: list[Command], answers: Path) -> str:
    """One bash script: each command in a group fed what is typed at it, then a mark with its
    exit status on both streams, so each command's output and status can be told apart."""
    parts = ["set -u"]
    for index, command in enumerate(commands):
        typed = answers / f"{index}.txt"
        typed.write_text(command.typed())
        parts.append(f"{{ {command.text}\n}} < {shlex.quote(str(typed))}")
        parts.append(f"rc=$?; echo; echo '{MARK} {index}' $rc; echo >&2; echo '{MARK} {index}' >&2")
    return "\n".join(parts) + "\n"


def _split(stream: str) -> dict[int, tuple[str, str | None]]:
    """{index: (output, exit status or None)} from a stream with marks."""
    found: dict[int, tuple[str, str | None]] = {}
    chunk: list[str] = []
    for line in stream.splitlines(keepends=True):
        if line.startswith(MARK):
            _, index, *rc = line.split()
            text = "".join(chunk)
            found[int(index)] = (text[:-1] if text.endswith("\n") else text, rc[0] if rc else None)
            chunk = []
        else:
            chunk.append(line)
    return found


def _exports(server: ServerProcess) -> dict[str, str]:
    """What the start banner says to export, parsed as a shell would."""

    def banner() -> str | None:
        text = server.log_path.read_text()
        return text if "Press Ctrl-C to stop." in text else None

    log = wait_until(banner, 30, what="the start banner")
    found = {}
    for line in log.splitlines():
        if line.strip().startswith("export "):
            name, _, value = shlex.split(line.strip())[1].partition("=")
            found[name] = value
    return found


def test_the_readme_works_word_for_word(server: ServerProcess, tmp_path: Path) -> None:
    commands = readme_commands()
    texts = [c.text for c in commands]
    assert any(t.startswith('clawfleet run echo "hello" --wait') for t in texts)  # a sane parse
    assert texts[-1].startswith("clawfleet delete -f examples/quickstart.yaml")
    server.start()
    home = tmp_path / "home"
    home.mkdir()
    answers = tmp_path / "typed"
    answers.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWFLEET_")}
    env |= {"HOME": str(home), **_exports(server)}
    done = subprocess.run(
        ["bash", "-c", _script(commands, answers)], env=env, cwd=REPO, capture_output=True,
        text=True, timeout=110, start_new_session=True,  # no terminal: prompts read stdin
    )  # fmt: skip
    outs, errs = _split(done.stdout), _split(done.stderr)
    problems = []
    for index, command in enumerate(commands):
        out, rc = outs.get(index, ("", None))
        err = errs.get(index, ("", None))[0]
        ok = rc is not None and (rc != "0" and "error:" in err if command.refused else rc == "0")
        if command.prints is not None and out.rstrip("\n") != command.prints:
            ok = False
        if not ok:
            problems.append(f"$ {command.text}\n[exit {rc}]\n{out}\n{err}")
    assert not problems, "\n\n".join(problems)
    last = outs[len(commands) - 1][0].splitlines()
    assert last == [
        "agent/reviewer deleted",
        "agent/echo deleted",
        "secret/gh deleted",
        "project/web deleted",
        "tenant/acme deleted",
    ]
