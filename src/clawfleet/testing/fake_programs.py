"""The programs a FakeRuntime runs: a tiny, strict subset of ``sh``, interpreted in-process.

The runtime contract launches small ``sh -c`` scripts and checks what they print, how they exit
and how they take SIGTERM. A fake that interprets exactly those forms passes the same contract
as a process runtime, so the contract stays one suite for every backend, and nothing forks. The
subset, statements separated by ``;``:

    echo WORDS [>&2]            print a line (stdout and stderr share the one log)
    exit N                      end with code N
    sleep SECONDS               wait, on the runtime's clock
    trap 'BODY; exit N' TERM    on SIGTERM, run BODY and exit N; ``trap '' TERM`` ignores it
    while :; do ...; done       loop forever
    for V in WORDS; do ...; done

Quotes group words; ``$NAME`` expands from the environment and loop variables (inside single
quotes too: a simplification). Anything else is refused at launch with a PermanentError, as a
program that cannot be executed would be. Exit codes follow the shell: 128 + N for signal N.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from clawfleet.core.clock import Clock
from clawfleet.core.errors import PermanentError

SIGTERM_EXIT: Final = 128 + 15
SIGKILL_EXIT: Final = 128 + 9
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Echo:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Exit:
    code: str


@dataclass(frozen=True)
class Sleep:
    seconds: str


@dataclass(frozen=True)
class Trap:
    body: tuple[Statement, ...] | None  # None: ignore SIGTERM


@dataclass(frozen=True)
class Loop:
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class For:
    variable: str
    words: tuple[str, ...]
    body: tuple[Statement, ...]


Statement = Echo | Exit | Sleep | Trap | Loop | For


def parse(script: str) -> tuple[Statement, ...]:
    """The statements of ``script``; PermanentError for anything outside the subset."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.wordchars += "$:"
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise PermanentError(f"the fake runtime cannot parse {script!r}: {exc}") from exc
    statements, end = _block(tokens, 0, script, closing=None)
    if end != len(tokens):
        raise PermanentError(f"the fake runtime cannot run {script!r}: stray {tokens[end]!r}")
    return statements


def _block(
    tokens: list[str], i: int, script: str, *, closing: str | None
) -> tuple[tuple[Statement, ...], int]:
    statements: list[Statement] = []
    while i < len(tokens) and tokens[i] != closing:
        if tokens[i] == ";":
            i += 1
            continue
        statement, i = _statement(tokens, i, script)
        statements.append(statement)
    if closing is not None and i == len(tokens):
        raise PermanentError(f"the fake runtime cannot run {script!r}: no {closing!r}")
    return tuple(statements), i


def _expect(tokens: list[str], i: int, word: str, script: str) -> int:
    if i >= len(tokens) or tokens[i] != word:
        raise PermanentError(f"the fake runtime cannot run {script!r}: expected {word!r}")
    return i + 1


def _statement(tokens: list[str], i: int, script: str) -> tuple[Statement, int]:
    if tokens[i] == "while":
        i = _expect(tokens, i + 1, ":", script)
        i = _expect(tokens, i, ";", script)
        i = _expect(tokens, i, "do", script)
        body, i = _block(tokens, i, script, closing="done")
        return Loop(body), i + 1
    if tokens[i] == "for":
        variable = tokens[i + 1] if i + 1 < len(tokens) else ""
        i = _expect(tokens, i + 2, "in", script)
        end = tokens.index(";", i) if ";" in tokens[i:] else len(tokens)
        words = tuple(tokens[i:end])
        i = _expect(tokens, _expect(tokens, end, ";", script), "do", script)
        body, i = _block(tokens, i, script, closing="done")
        return For(variable, words, body), i + 1
    end = i
    while end < len(tokens) and tokens[end] not in (";", "done"):
        end += 1
    argv = tokens[i:end] or [""]
    if ">&" in argv:  # stdout and stderr share the one log: drop the redirection
        at = argv.index(">&")
        if argv[at + 1 : at + 2] not in (["1"], ["2"]):
            raise PermanentError(f"the fake runtime cannot run {script!r}: only >&1 or >&2")
        argv = argv[:at] + argv[at + 2 :]
    name, args = argv[0], argv[1:]
    operators = [word for word in argv if word and set(word) <= set("();<>|&")]
    if operators:
        raise PermanentError(f"the fake runtime cannot run {script!r}: no {operators[0]!r}")
    if name == "echo":
        return Echo(tuple(args)), end
    if name == "exit" and len(args) <= 1:
        return Exit(args[0] if args else "0"), end
    if name == "sleep" and len(args) == 1:
        return Sleep(args[0]), end
    if name == "trap" and len(args) == 2 and args[1] == "TERM":
        return Trap(_trap_body(args[0], script)), end
    raise PermanentError(f"the fake runtime cannot run {' '.join(argv)!r} (in {script!r})")


def _trap_body(text: str, script: str) -> tuple[Statement, ...] | None:
    if not text:
        return None
    body = parse(text)
    if not body or not isinstance(body[-1], Exit):
        raise PermanentError(f"the fake runtime needs a trap in {script!r} to end with exit")
    return body


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class FakeProcess:
    """One running program. Without statements it is idle: it runs until signalled or ended
    by a test. ``finished`` is set once it has an exit code."""

    def __init__(
        self,
        statements: Sequence[Statement] | None,
        env: Mapping[str, str],
        clock: Clock,
        write: Callable[[str], None],
        on_exit: Callable[[int], None],
    ) -> None:
        self._env = dict(env)
        self._clock = clock
        self._write = write
        self._on_exit = on_exit
        self._ignore_term = False
        self._trap: tuple[Statement, ...] | None = None  # run on SIGTERM instead of ending
        self.exit_code: int | None = None
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if statements is not None:
            self._task = asyncio.get_running_loop().create_task(self._main(tuple(statements)))

    def __repr__(self) -> str:  # the environment may hold secrets
        return f"FakeProcess(exit_code={self.exit_code!r})"

    def terminate(self) -> None:
        """SIGTERM: the trap runs, is ignored, or the program ends with 143."""
        if self.exit_code is not None or self._ignore_term:
            return
        self._cancel()
        if self._trap is None:
            self._finish(SIGTERM_EXIT)
        else:
            self._task = asyncio.get_running_loop().create_task(self._main(self._trap))

    def kill(self) -> None:
        self.end(SIGKILL_EXIT)

    def end(self, code: int) -> None:
        """End now with ``code``, whatever the program is doing."""
        if self.exit_code is None:
            self._cancel()
            self._finish(code)

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _finish(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
            self.finished.set()
            self._on_exit(code)

    async def _main(self, statements: tuple[Statement, ...]) -> None:
        try:
            await self._run(statements, {})
        except _Exited as exited:
            self._finish(exited.code)
        else:
            self._finish(0)

    async def _run(self, statements: tuple[Statement, ...], local: dict[str, str]) -> None:
        for statement in statements:
            await asyncio.sleep(0)  # a running program never holds the event loop
            match statement:
                case Echo(words=words):
                    self._write(" ".join(self._expand(word, local) for word in words))
                case Exit(code=code):
                    raise _Exited(int(self._expand(code, local)) & 0xFF)
                case Sleep(seconds=seconds):
                    await self._clock.sleep(float(self._expand(seconds, local)))
                case Trap(body=body):
                    self._ignore_term, self._trap = body is None, body
                case Loop(body=body):
                    while True:
                        await self._run(body, local)
                case For(variable=variable, words=words, body=body):
                    for word in words:
                        await self._run(body, {**local, variable: word})

    def _expand(self, word: str, local: Mapping[str, str]) -> str:
        values = {**self._env, **local}
        return _VARIABLE.sub(lambda match: values.get(match.group(1), ""), word)


def program_of(command: Sequence[str]) -> tuple[Statement, ...] | None:
    """The statements of ``sh -c SCRIPT`` (any path to sh); None for any other command,
    which stands for an idle program such as a runner."""
    if len(command) == 3 and command[0].rsplit("/", 1)[-1] == "sh" and command[1] == "-c":
        return parse(command[2])
    return None
