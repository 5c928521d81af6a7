"""Rules for resource names, label keys and label values (Kubernetes-compatible).

Names are DNS-1123 labels so they are safe as directory names, process titles, container names
and Kubernetes object names alike: no path separators, no dots, no upper case, at most 63 chars.
"""

from __future__ import annotations

import re

NAME_MAX = 63
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid resource name, or None if it is."""
    if not name:
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters"
    if not _NAME_RE.fullmatch(name):
        return (
            "must consist of lower-case letters, digits and '-', "
            "and start and end with a letter or digit"
        )
    return None


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return "may contain at most one '/'"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return "prefix must be a DNS subdomain of at most 253 characters"
    if not name or len(name) > NAME_MAX or not _LABEL_NAME_RE.fullmatch(name):
        return (
            "name part must be 1-63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if value == "":
        return None
    if len(value) > NAME_MAX or not _LABEL_NAME_RE.fullmatch(value):
        return (
            "must be at most 63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None
