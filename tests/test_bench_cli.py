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
