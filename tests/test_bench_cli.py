"""``kfast bench`` end to end at a small size (the simulator runs in its own process)."""

from __future__ import annotations

import json
import pathlib

import pytest

from kfast._bench import native_missing
from kfast._cli import build_parser, main


def test_bench_json_small(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "--objects", "400", "--churn", "600", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "simulator" and out["objects"] == 400
    assert 4000 < out["mean_object_json_bytes"] < 6500
    assert out["baseline_events_per_second"] > 100
    if native_missing():
        assert any("PENDING" in n for n in out["notes"])
        assert out["verified"] is None and rc == 0
    else:
        assert out["verified"] is True and rc == 0, out["verify_detail"]
        assert out["watch_events"] == 600 and out["watch_events_per_second"] > 0
        assert out["ratio_vs_baseline"] > 0
        assert out["sync_seconds"] > 0 and out["indexer_bytes_per_object"] > 1000
        assert out["initial_sync"] == "streaming list (WatchList)"


def test_bench_parser_cluster_options() -> None:
    args = build_parser().parse_args(["bench", "--kubeconfig", "/tmp/kc", "--context", "c",
                                      "--resource", "configmaps", "--namespace", "ns",
                                      "--duration", "3", "--objects", "1_000"])
    assert (args.kubeconfig, args.context, args.resource, args.namespace) == \
        ("/tmp/kc", "c", "configmaps", "ns")
    assert args.duration == 3.0 and args.objects == 1000


def test_bench_cluster_mode_through_a_kubeconfig(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cluster mode reads a kubeconfig; here it points at a simulator (plain HTTP)."""
    from kfast.simulator import Simulator

    with Simulator(pods=300, seed=2) as sim:
        kc = tmp_path / "kubeconfig"
        kc.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
            f"clusters:\n- name: sim\n  cluster:\n    server: {sim.url}\n"
            "users:\n- name: u\n  user: {}\n"
            "contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: u\n")
        churn = sim.prepare_churn("pods", 50)
        rc = main(["bench", "--kubeconfig", str(kc), "--namespace", "payments",
                   "--duration", "1.0", "--json", "--quiet"])
        out = json.loads(capsys.readouterr().out)
        assert out["mode"] == "cluster" and out["server"] == sim.url and rc == 0
        if native_missing():
            assert any("PENDING" in n for n in out["notes"])
            return
        assert out["objects"] == sum(1 for k in sim.state() if k.startswith("payments/"))
        assert out["sync_seconds"] > 0
        # Only list and watch: the bench never writes to a real cluster.
        assert {r.verb for r in sim.requests} <= {"list", "watch"}
        del churn


@pytest.mark.parametrize("argv", [
    ["--objects", "0"], ["--churn", "-5"], ["--objects", "ten"], ["--updates", "2"],
    ["--deletes", "nan"], ["--timeout", "0"], ["--duration", "-1"],
    ["--updates", "0.6", "--deletes", "0.6"],
    # Cluster-only options in simulator mode would be silently ignored.
    ["--namespace", "foo"], ["--resource", "deployments"],
])
def test_bench_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["bench", *argv])
    assert ei.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bench_against_unreachable_cluster_says_why(tmp_path: pathlib.Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    kc = tmp_path / "config"
    kc.write_text(
        "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n"
        "users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
        "current-context: x\n")
    assert main(["bench", "--kubeconfig", str(kc), "--resource", "configmaps", "-q",
                 "--timeout", "60"]) == 2
    assert "ConnectError" in capsys.readouterr().err
    assert main(["bench", "--kubeconfig", str(kc), "--context", "nope", "-q"]) == 2
    assert "ConfigError" in capsys.readouterr().err


def test_sim_on_a_port_in_use_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["sim", "--pods", "1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"kfast sim: cannot listen on 127.0.0.1:{port}: ") and "in use" in err


def test_tiny_churn_warns_in_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    if native_missing():
        pytest.skip("the informer needs kfast._native")
    assert main(["bench", "--objects", "50", "--churn", "5", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["watch_events"] == 5 and len(out["warnings"]) == 1
    assert "too short to measure (5 events in" in out["warnings"][0] and "--churn" in out["warnings"][0]
    assert main(["bench", "--objects", "50", "--churn", "5", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "WARNING: the watch phase was too short to measure (5 events" in text


def test_long_enough_watch_phase_has_no_warning() -> None:
    from kfast._bench import BenchResult, format_result, measurement_warnings

    r = BenchResult("simulator", "pods", 10, 0.1, 100.0, False, watch_events=50_000, watch_seconds=0.8,
                    watch_events_per_second=62_500.0)
    assert measurement_warnings(r) == [] and "WARNING" not in format_result(r)
    r.watch_seconds = 0.2  # many events but too quick to time
    assert "noise" in measurement_warnings(r)[0]
    cluster = BenchResult("cluster", "configmaps", 10, 0.1, 100.0, False, watch_events=3, watch_seconds=10.0)
    assert "--duration" in measurement_warnings(cluster)[0]
    assert measurement_warnings(BenchResult("simulator", "pods", 1, 0.1, 10.0, False)) == []  # no watch phase


def test_sim_port_in_use_exit_status_of_the_command() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "kfast", "sim", "--pods", "1", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"kfast sim: cannot listen on 127.0.0.1:{port}: Address already in use"]
