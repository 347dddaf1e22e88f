"""Capture the discovery documents a real kube-apiserver serves, for the unit tests.

    python tests/data/capture_discovery.py        # writes tests/data/discovery-<version>.json

Starts kfast.testing's kube-apiserver + etcd (the binaries testenv/build.sh builds) and saves,
for each request the discovery code makes, the response's Content-Type and JSON body:
``/api`` and ``/apis`` with the aggregated Accept header (v2, and v2beta1 alone) and with plain
JSON, and every group-version's APIResourceList.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from kfast.testing import ADMIN, KUBE_VERSION, Cluster

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
PLAIN = "application/json"


def main() -> int:
    out: dict[str, Any] = {"version": KUBE_VERSION, "responses": {}}
    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp)) as cluster, cluster.client(ADMIN) as c:
        def get(path: str, accept: str, key: str) -> Any:
            r = c.get(path, headers={"Accept": accept})
            r.raise_for_status()
            out["responses"][key] = {"content_type": r.headers["content-type"], "body": r.json()}
            return r.json()

        for prefix in ("/api", "/apis"):
            get(prefix, V2, f"{prefix} v2")
            get(prefix, V2BETA1, f"{prefix} v2beta1")
        core = get("/api", PLAIN, "/api")
        groups = get("/apis", PLAIN, "/apis")
        for v in core["versions"]:
            get(f"/api/{v}", PLAIN, f"/api/{v}")
        for g in groups["groups"]:
            for v in g["versions"]:
                get(f"/apis/{v['groupVersion']}", PLAIN, f"/apis/{v['groupVersion']}")
        out["version"] = c.get("/version").json()["gitVersion"]
    dest = Path(__file__).with_name(f"discovery-{out['version']}.json")
    dest.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {dest} ({len(out['responses'])} responses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
