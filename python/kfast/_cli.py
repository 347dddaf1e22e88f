"""The ``kfast`` command.

::

    kfast bench [--objects N] [--churn N] [--handler] [--json]       # embedded simulator
    kfast bench --kubeconfig ~/.kube/config [--context C] [--resource pods]
                [--namespace NS] [--duration 30]                    # a real cluster, read-only
    kfast sim [--pods N] [--configmaps N] [--port P]                # serve the simulator
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        v = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return v


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kfast", description="kfast command-line tools")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="informer throughput and memory",
                       description="Measure a kfast informer: initial sync, watch events/s "
                       "until the cache matches the server, memory per cached object, and "
                       "plain httpx + json.loads on the same stream as a baseline. Uses an "
                       "embedded simulated API server unless --kubeconfig/--context is given.")
    b.add_argument("--objects", type=_positive_int, default=100_000,
                   help="pods in the simulator (default 100,000)")
    b.add_argument("--churn", type=_positive_int, default=100_000,
                   help="watch events after the initial sync (default 100,000)")
    b.add_argument("--updates", type=_share, default=0.8, help="share of updates in the churn")
    b.add_argument("--deletes", type=_share, default=0.1,
                   help="share of deletes (the rest are creates)")
    b.add_argument("--handler", action="store_true",
                   help='add a Python handler reading obj["metadata"]["name"]')
    b.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the httpx + json.loads baseline")
    b.add_argument("--indexes", default="namespace,node",
                   help='built-in indexes: comma list of "namespace", "node" (spec.nodeName), '
                   'or "none" (default: namespace,node)')
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    b.add_argument("--timeout", type=_positive_float, default=300.0, help="give up after this many s")
    g = b.add_argument_group("real cluster (read-only: list and watch)")
    g.add_argument("--kubeconfig", help="kubeconfig file: benchmark this cluster")
    g.add_argument("--context", help="kubeconfig context")
    g.add_argument("--resource", help="core/v1 resource (default pods)")
    g.add_argument("--namespace", help="only this namespace")
    g.add_argument("--duration", type=_positive_float, default=10.0,
                   help="seconds to count watch events after the sync (default 10)")

    s = sub.add_parser("sim", help="serve the simulated API server until interrupted")
    s.add_argument("--pods", type=_positive_int, default=10_000)
    s.add_argument("--configmaps", type=_positive_int, default=1_000)
    s.add_argument("--port", type=_port, default=8001)
    s.add_argument("--churn-rate", type=float, default=0.0,
                   help="updates per second to keep producing (0: none)")
    s.add_argument("--seed", type=int, default=1)
    return p


def _bench(args: argparse.Namespace) -> int:
    from kfast._bench import BenchOptions, format_result, result_json, run_bench
    from kfast.errors import KfastError

    indexes = tuple(i for i in args.indexes.split(",") if i and i != "none")
    unknown = set(indexes) - {"namespace", "node"}
    if unknown:
        build_parser().error(f"unknown index {sorted(unknown)}; use namespace, node or none")
    cluster = args.kubeconfig is not None or args.context is not None
    if not cluster and (args.resource is not None or args.namespace is not None):
        build_parser().error("--resource and --namespace need --kubeconfig or --context "
                             "(the simulator serves pods in every namespace)")
    if args.updates + args.deletes > 1.0:
        build_parser().error("--updates + --deletes must not exceed 1 (the rest are creates)")
    opts = BenchOptions(indexes=indexes, objects=args.objects, churn=args.churn, updates=args.updates,
                        deletes=args.deletes, handler=args.handler, baseline=args.baseline,
                        seed=args.seed, progress=not args.quiet, kubeconfig=args.kubeconfig,
                        context=args.context, resource=args.resource or "pods",
                        namespace=args.namespace, duration=args.duration, timeout=args.timeout)
    try:
        result = run_bench(opts)
    except KfastError as e:
        # A broken kubeconfig, an unreachable or refusing cluster: one clear line, no traceback.
        print(f"kfast bench: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(result_json(result) if args.json else format_result(result))
    return 0 if result.verified in (None, True) else 1


def _sim(args: argparse.Namespace) -> int:
    import signal

    from kfast.simulator import Simulator

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        sim = Simulator(pods=args.pods, configmaps=args.configmaps, port=args.port, seed=args.seed)
    except OSError as e:
        # The port is taken (or not ours to bind): one line, as for any usage error.
        print(f"kfast sim: cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    # SIGTERM (and SIGINT, which a background job ignores) stop it cleanly.
    signal.signal(signal.SIGTERM, on_term)
    with sim:
        print(f"kfast simulator: {sim.url} ({args.pods:,} pods, {args.configmaps:,} "
              "configmaps); Ctrl-C to stop", file=sys.stderr)
        try:
            owed = 0.0
            while True:
                time.sleep(0.1)
                # Small batches applied at once: a paced release running in the background
                # would race the next prepare_churn.
                owed += args.churn_rate * 0.1
                if owed >= 1:
                    sim.release_churn(sim.prepare_churn("pods", int(owed)))
                    owed -= int(owed)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    return _sim(args)


if __name__ == "__main__":
    sys.exit(main())
