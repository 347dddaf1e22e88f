"""A script that never stops its informers must still exit normally.

Regression: the informer's daemon threads spend their time in Rust with the GIL released;
at interpreter exit CPython made such a thread exit while re-taking the GIL, which aborted
the whole process (SIGABRT, exit 134) instead of returning the script's own status."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import asyncio, sys, time, kfast
    from kfast.simulator import Simulator

    with Simulator(pods=2000) as sim:
        cfg = kfast.Config.for_url(sim.url)
        factory = kfast.SharedInformerFactory(cfg, namespace="billing")
        pods = factory.for_resource(kfast.GroupVersionResource("", "v1", "pods"),
                                    indexers={"node": kfast.index.by_field("spec.nodeName")})
        adds = []
        pods.add_event_handler(on_add=lambda pod, initial: adds.append(pod["metadata"]["name"]),
                               resync_period=300)
        factory.start()
        assert factory.wait_for_cache_sync(30)
        time.sleep(0.3)

        async def main() -> None:
            await pods.wait_for_sync_async()
            got = []

            async def consume() -> None:
                async for ev in pods.stream():
                    got.append(ev)
                    if len(got) >= 5:
                        break

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.2)
            with kfast.Client(cfg) as k:
                try:  # the simulator takes no writes over HTTP; only the attempt matters
                    k.patch(f"/api/v1/namespaces/billing/pods/{adds[0]}", {"metadata": {}})
                except kfast.errors.ApiError:
                    pass
            await asyncio.wait_for(task, 5)

        asyncio.run(main())
        if sys.argv[1] == "raise":
            raise RuntimeError("the controller failed")
    # no factory.shutdown(): the simulator is gone and the informer is still running
''')



@pytest.mark.parametrize(("how", "code"), [("return", 0), ("raise", 1)])
def test_exit_without_shutdown_keeps_the_exit_status(how: str, code: int) -> None:
    for _ in range(3):  # the abort was timing-dependent (1 run in 3 to every run, here)
        proc = subprocess.run([sys.executable, "-c", SCRIPT, how], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == code, proc.stderr[-2000:]
        assert "Fatal Python error" not in proc.stderr
