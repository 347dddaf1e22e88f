"""Shared helpers of the side-by-side benchmarks: result rows and the table they print."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kfast._bench import peak_rss_bytes, rss_bytes  # noqa: E402  (re-exported for benches)

__all__ = ["Row", "print_table", "rss_bytes", "peak_rss_bytes", "pending", "run_isolated", "emit"]


@dataclass
class Row:
    """One consumer's result. ``items`` are events (watch) or objects (list)."""

    name: str
    items: int = 0
    seconds: float = 0.0
    nbytes: int = 0
    memory_bytes: int | None = None  # RSS growth while it ran (what it keeps), if relevant
    note: str = ""
    pending: bool = False

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6 if self.seconds else 0.0


def pending(name: str, why: str) -> Row:
    return Row(name, note=why, pending=True)


def run_isolated(script: str, args: list[str]) -> Row:
    """Run one consumer in a fresh interpreter (``script --only ...``) so that its memory is
    not blurred by what earlier consumers freed; it prints its Row as JSON on stdout."""
    import subprocess

    out = subprocess.run([sys.executable, script, *args], check=False, capture_output=True,
                         text=True)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    try:
        return Row(**json.loads(last))
    except (ValueError, TypeError):
        return pending(" ".join(args), f"failed: {out.stderr.strip().splitlines()[-1:]}")


def emit(row: Row) -> None:
    """The child side of :func:`run_isolated`."""
    print(json.dumps(asdict(row)))


def print_table(title: str, rows: list[Row], baseline: str, unit: str = "events/s",
                as_json: bool = False) -> None:
    base = next((r for r in rows if r.name == baseline and not r.pending), None)
    if as_json:
        out = [dict(asdict(r), rate=r.rate, mb_per_s=r.mb_per_s,
                    ratio=(r.rate / base.rate if base and base.rate and not r.pending else None))
               for r in rows]
        print(json.dumps({"title": title, "baseline": baseline, "rows": out}, indent=2))
        return
    print(f"\n{title}")
    head = f"  {'consumer':<50} {unit:>12} {'MB/s':>9} {'x baseline':>11} {'memory':>10}  note"
    print(head)
    print("  " + "-" * (len(head) + 10))
    for r in rows:
        if r.pending:
            print(f"  {r.name:<50} {'pending':>12} {'':>9} {'':>11} {'':>10}  {r.note}")
            continue
        ratio = f"{r.rate / base.rate:.2f}x" if base and base.rate else "-"
        mem = f"{r.memory_bytes / 2**20:,.0f} MB" if r.memory_bytes is not None else ""
        print(f"  {r.name:<50} {r.rate:>12,.0f} {r.mb_per_s:>9,.0f} {ratio:>11} {mem:>10}"
              f"  {r.note}")
    print(f"  (baseline: {baseline}; {os.cpu_count()} CPUs; simulator in its own process)")
