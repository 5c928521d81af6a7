"""Read manifests for `apply -f` and `delete -f` (files, directories or stdin, multi-document
YAML or JSON) and the structured input of `run --data`, with errors that name the file and line.
YAML is read strictly (``strict_yaml``): no repeated key, no alias bomb, no endless nesting."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clawfleet.cli import strict_yaml
from clawfleet.core.errors import InvalidInput
from clawfleet.domain.kinds import APPLY_ORDER, find_kind

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    source: str  # "file.yaml#2": the file and the document's position in it
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.doc.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    @property
    def ref(self) -> str:
        return f"{self.kind.lower() or '?'}/{self.name or '?'}"


def _files(path: str) -> list[Path]:
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise InvalidInput(f"{path} holds no .yaml, .yml or .json files")
        return files
    if not target.exists():
        raise InvalidInput(f"{path} does not exist")
    return [target]


def _resolve_local_paths(doc: dict[str, Any], base: Path) -> None:
    """In an Agent's command, ``./x`` and ``../x`` mean: next to the manifest file.

    Agent programs run in their instance's own directory, so a path relative to the manifest
    would not resolve there; `apply -f` makes it absolute, as compose files do for build paths.
    """
    spec = doc.get("spec")
    if doc.get("kind") != "Agent" or not isinstance(spec, dict):
        return
    command = spec.get("command")
    if isinstance(command, list):
        spec["command"] = [
            str((base / arg).resolve())
            if isinstance(arg, str) and arg.startswith(("./", "../"))
            else arg
            for arg in command
        ]


def _yaml_error(exc: yaml.YAMLError, source: str) -> InvalidInput:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return InvalidInput(f"{source}:{where}: invalid YAML: {problem}")


def _parse(text: str, source: str, base: Path | None = None) -> list[Manifest]:
    try:
        docs = strict_yaml.load_all(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from exc
    manifests = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        where = f"{source}#{index}"
        if not isinstance(doc, dict):
            raise InvalidInput(f"{where}: a document must be a mapping with kind and metadata")
        if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List"):
            for item in doc["items"]:
                if isinstance(item, dict):
                    if base is not None:
                        _resolve_local_paths(item, base)
                    manifests.append(Manifest(where, item))
            continue
        kind = doc.get("kind")
        info = find_kind(kind) if isinstance(kind, str) else None
        if info is None:
            raise InvalidInput(f"{where}: unknown or missing kind {kind!r}")
        if info.kind != kind:
            raise InvalidInput(f"{where}: write kind {kind!r} as {info.kind!r}")
        if base is not None:
            _resolve_local_paths(doc, base)
        manifests.append(Manifest(where, doc))
    return manifests


def load_manifests(paths: list[str]) -> list[Manifest]:
    """All documents from ``paths`` ('-' is stdin), parents first (tenants, projects, ...)."""
    manifests: list[Manifest] = []
    for path in paths:
        if path == "-":
            manifests += _parse(sys.stdin.read(), "<stdin>")
            continue
        for file in _files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"cannot read {file}: {exc}") from exc
            manifests += _parse(text, str(file), file.parent.resolve())
    return sorted(manifests, key=lambda m: APPLY_ORDER.get(m.kind, len(APPLY_ORDER)))


def load_data(path: str) -> dict[str, Any]:
    """The JSON or YAML mapping in file ``path`` ('-' is stdin): a task's ``spec.data``."""
    source = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read --data {path}: {exc}") from exc
    try:
        doc = strict_yaml.load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from exc
    if not isinstance(doc, dict):
        what = "an empty document" if doc is None else f"a {type(doc).__name__}"
        raise InvalidInput(
            f'{source}: --data must hold one JSON or YAML mapping (e.g. {{"files": [...]}}), '
            f"not {what}"
        )
    return doc
