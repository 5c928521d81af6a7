"""Kubernetes-style quantities: "500m" CPUs, "512Mi" bytes."""

from __future__ import annotations

_SUFFIX = {
    "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def parse_quantity(text: str | int | float | None) -> float:
    """The number a quantity stands for; None or '' is 0."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, int | float):
        return float(text)
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)
