"""The cluster's users authenticate the way the fixture promises."""

from __future__ import annotations

import httpx
import pytest

from kfast.testing import ADMIN, TOKEN_ADMIN, TOKEN_ADMIN_GROUP, TOKEN_USER, USER, Cluster

pytestmark = pytest.mark.integration

REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def whoami(client: httpx.Client) -> dict[str, object]:
    r = client.post(REVIEW, json={"apiVersion": "authentication.k8s.io/v1",
                                  "kind": "SelfSubjectReview"})
    assert r.status_code == 201, r.text
    info: dict[str, object] = r.json()["status"]["userInfo"]
    return info


@pytest.mark.parametrize("name", [ADMIN, USER, TOKEN_USER, TOKEN_ADMIN])
def test_each_user_authenticates_as_itself(cluster: Cluster, name: str) -> None:
    with cluster.client(name) as client:
        info = whoami(client)
    assert info["username"] == name
    groups = info["groups"]
    assert isinstance(groups, list)
    assert set(cluster.users[name].groups) | {"system:authenticated"} <= set(groups)


def test_token_user_is_unprivileged(token_user: httpx.Client) -> None:
    r = token_user.get("/api/v1/namespaces/default/secrets")
    assert r.status_code == 403
    assert r.json()["reason"] == "Forbidden"


def test_token_admin_is_bound_to_cluster_admin(token_admin: httpx.Client) -> None:
    r = token_admin.get("/api/v1/namespaces/default/secrets")
    assert r.status_code == 200, r.text
    binding = token_admin.get(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kfast-test-admins"
    ).json()
    assert binding["subjects"][0]["name"] == TOKEN_ADMIN_GROUP


def test_wrong_token_is_401(cluster: Cluster) -> None:
    with httpx.Client(verify=cluster.ssl_context(TOKEN_USER),
                      headers={"Authorization": "Bearer not-a-token"}) as c:
        r = c.get(f"{cluster.url}/api/v1/namespaces")
    assert r.status_code == 401
    assert r.json()["reason"] == "Unauthorized"


def test_anonymous_may_only_probe(cluster: Cluster) -> None:
    with httpx.Client(verify=cluster.ssl_context(TOKEN_USER)) as c:
        assert c.get(f"{cluster.url}/readyz").status_code == 200
        r = c.get(f"{cluster.url}/api/v1/namespaces")
    assert r.status_code == 403
    assert "system:anonymous" in r.json()["message"]
