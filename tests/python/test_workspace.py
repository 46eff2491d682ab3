"""Server basics through databricks-sdk: discovery, auth, tokens, errors."""

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors


def test_health_and_host_metadata_need_no_token(tarn):
    assert tarn.raw("GET", "/health", token=False).json() == {"status": "ok"}
    meta = tarn.raw("GET", "/.well-known/databricks-config", token=False).json()
    assert meta["oidc_endpoint"].startswith(tarn.url)
    assert meta["workspace_id"].isdigit()


def test_unknown_route_is_json_404(tarn):
    r = tarn.raw("GET", "/api/2.0/no/such/thing")
    assert r.status_code == 404
    assert r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_current_user_and_org_header(tarn, w):
    me = w.current_user.me()
    assert me.user_name == "admin" and me.active
    r = tarn.raw("GET", "/api/2.0/preview/scim/v2/Me")
    assert r.headers["X-Databricks-Org-Id"] == tarn.raw("GET", "/.well-known/databricks-config").json()["workspace_id"]


def test_missing_or_wrong_token_is_unauthenticated(tarn):
    r = tarn.raw("GET", "/api/2.1/clusters/list", token=False)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    with pytest.raises(errors.Unauthenticated):
        list(tarn.client(token="dapi0000000000000000000000000000000").clusters.list())


def test_admin_token_file_is_private(tarn):
    assert (tarn.home / "token").stat().st_mode & 0o777 == 0o600
    assert tarn.token.startswith("dapi")


def test_token_lifecycle(tarn, w):
    created = w.tokens.create(comment="ci", lifetime_seconds=3600)
    assert created.token_value.startswith("dapi")
    info = created.token_info
    assert info.comment == "ci" and info.expiry_time > info.creation_time
    second = tarn.client(token=created.token_value)
    assert second.current_user.me().user_name == "admin"
    assert info.token_id in [t.token_id for t in w.tokens.list()]
    w.tokens.delete(info.token_id)
    assert info.token_id not in [t.token_id for t in w.tokens.list()]
    with pytest.raises(errors.Unauthenticated):
        second.current_user.me()
    with pytest.raises(errors.NotFound):
        w.tokens.delete(info.token_id)


def test_malformed_json_is_bad_request_and_stores_nothing(tarn, w):
    before = len(list(w.clusters.list()))
    with pytest.raises(errors.BadRequest) as e:
        w.api_client.do("POST", "/api/2.1/clusters/create", data="{not json", headers={"Content-Type": "application/json"})
    assert e.value.error_code == "MALFORMED_REQUEST"
    assert len(list(w.clusters.list())) == before


def test_not_implemented_is_honest(w):
    with pytest.raises(errors.NotImplemented):
        w.api_client.do("POST", "/api/2.1/clusters/update", body={"cluster_id": "x"})
