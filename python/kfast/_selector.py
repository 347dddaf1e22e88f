"""Label selectors, parsed and matched client-side (for :class:`kfast.Lister`).

Grammar (the API's): requirements separated by commas, each one of ``k=v``, ``k==v``,
``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist).
Matching reads ``StoredObject.labels``, which Rust extracted, so no JSON is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Requirement", "Selector", "parse_selector"]

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TOKEN = re.compile(
    rf"""\s*(?:
      (?P<not>!)\s*(?P<nkey>{_KEY})
    | (?P<key>{_KEY})\s*(?:
          (?P<op>==|=|!=)\s*(?P<value>{_VALUE})
        | (?P<setop>in|notin)\s*\(\s*(?P<values>[^()]*)\)
      )?
    )\s*(?:,|$)""",
    re.VERBOSE,
)
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        v = labels.get(self.key)
        op = self.op
        if op == "exists":
            return v is not None
        if op == "!":
            return v is None
        if op in ("=", "in"):
            return v is not None and v in self.values
        # "!=" and "notin" match objects without the label, as the API server does.
        return v is None or v not in self.values


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def parse_selector(text: str | Mapping[str, str] | None) -> Selector:
    """Parse a selector string (or a ``{key: value}`` equality mapping). Raises ValueError."""
    if text is None:
        return Selector(())
    if isinstance(text, Mapping):
        return Selector(tuple(Requirement(k, "=", frozenset([v])) for k, v in text.items()))
    s = text.strip()
    reqs: list[Requirement] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid label selector {text!r} at position {pos}")
        pos = m.end()
        if m["not"]:
            reqs.append(Requirement(m["nkey"], "!"))
        elif m["op"]:
            op = "!=" if m["op"] == "!=" else "="
            reqs.append(Requirement(m["key"], op, frozenset([m["value"]])))
        elif m["setop"]:
            values = [v.strip() for v in m["values"].split(",")]
            if not values or any(not _VALUE_RE.match(v) for v in values) or values == [""]:
                raise ValueError(f"invalid value list in label selector {text!r}")
            reqs.append(Requirement(m["key"], m["setop"], frozenset(values)))
        else:
            reqs.append(Requirement(m["key"], "exists"))
        if pos < len(s) and s[pos - 1] != ",":
            raise ValueError(f"invalid label selector {text!r} at position {pos}")
        if s.endswith(",") and pos == len(s):
            raise ValueError(f"invalid label selector {text!r}: trailing comma")
    return Selector(tuple(reqs))
