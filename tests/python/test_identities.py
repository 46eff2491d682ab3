"""Identities through databricks-sdk: SCIM users, groups (nested) and
service principals (`w.users`, `w.groups`, `w.service_principals`,
`w.current_user`), admins, `w.token_management` with on-behalf-of tokens,
and `tarn token create --user`. Three principals: the admin, a user whose
first token comes from the CLI, and a service principal."""

import pytest
from conftest import own_server
from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied, ResourceConflict, Unauthenticated
from databricks.sdk.service import iam

PATCH = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


@pytest.fixture(scope="module")
def server():
    yield from own_server("tarn-identities-")


def group_names(resource):
    return sorted((g.display, g.type) for g in resource.groups or [])


def test_users_groups_and_nesting(server):
    w = server.client()
    me = w.current_user.me()
    assert me.user_name == "admin" and ("admins", "direct") in group_names(me)

    ana = w.users.create(user_name="ana@example.com", display_name="Ana",
                         entitlements=[iam.ComplexValue(value="allow-cluster-create")])
    bob = w.users.create(user_name="bob@example.com", name=iam.Name(given_name="Bob", family_name="Ross"))
    assert ana.id and ana.id != bob.id and ana.active
    assert [e.value for e in ana.entitlements] == ["allow-cluster-create"]
    assert w.users.get(bob.id).name.family_name == "Ross"

    team = w.groups.create(display_name="team", members=[iam.ComplexValue(value=ana.id)])
    data = w.groups.create(display_name="data", members=[iam.ComplexValue(value=team.id)])
    assert group_names(w.users.get(ana.id)) == [("data", "indirect"), ("team", "direct")]
    assert [m.display for m in w.groups.get(data.id).members] == ["team"]

    # The SDK pages from startIndex 1 until a page comes back empty.
    assert {u.user_name for u in w.users.list()} == {"admin", "ana@example.com", "bob@example.com"}
    assert [u.user_name for u in w.users.list(filter='userName sw "ana"')] == ["ana@example.com"]
    assert [u.display_name for u in w.users.list(filter='name.familyName eq "ross"', attributes="displayName")] == [
        "bob@example.com"]
    assert [u.user_name for u in w.users.list(sort_by="userName", sort_order=iam.ListSortOrder.DESCENDING)] == [
        "bob@example.com", "ana@example.com", "admin"]
    page = server.raw("GET", "/api/2.0/preview/scim/v2/Users?startIndex=2&count=1").json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"], len(page["Resources"])) == (3, 2, 1, 1)
    assert server.raw("GET", "/api/2.0/preview/scim/v2/Users?startIndex=4").json()["Resources"] == []
    assert {g.display_name for g in w.groups.list()} >= {"admins", "users", "team", "data"}
    (users,) = w.groups.list(filter='displayName eq "users"')
    assert {m.display for m in users.members} == {"admin", "ana@example.com", "bob@example.com"}

    w.groups.patch(team.id, schemas=PATCH, operations=[
        iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": bob.id}]),
        iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{ana.id}"]'),
        iam.Patch(op=iam.PatchOp.REPLACE, value={"displayName": "crew"}),
    ])
    crew = w.groups.get(team.id)
    assert crew.display_name == "crew" and [m.value for m in crew.members] == [bob.id]
    assert group_names(w.users.get(ana.id)) == []

    w.users.update(ana.id, user_name="ana@example.com", display_name="Ana B.")
    assert w.users.get(ana.id).display_name == "Ana B."
    w.groups.delete(data.id)
    assert group_names(w.users.get(bob.id)) == [("crew", "direct")]
    w.users.delete(bob.id)
    with pytest.raises(NotFound):
        w.users.get(bob.id)
    assert [m.value for m in w.groups.get(team.id).members or []] == []


def test_a_user_from_the_cli_reads_but_does_not_write_until_made_admin(server):
    w = server.client()
    carol = server.client(server.cli_token("carol@example.com"))
    me = carol.current_user.me()
    assert me.user_name == "carol@example.com" and group_names(me) == []
    assert "admin" in {u.user_name for u in carol.users.list()}
    for write in [lambda: carol.users.create(user_name="dan@example.com"),
                  lambda: carol.groups.create(display_name="mine"),
                  lambda: carol.service_principals.create(display_name="bot"),
                  lambda: carol.token_management.list()]:
        with pytest.raises(PermissionDenied):
            write()
    own = carol.tokens.create(comment="mine", lifetime_seconds=3600)
    assert [t.comment for t in carol.tokens.list()] == ["", "mine"]

    (admins,) = w.groups.list(filter='displayName eq "admins"')
    w.groups.patch(admins.id, schemas=PATCH,
                   operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": me.id}])])
    dan = carol.users.create(user_name="dan@example.com")
    assert carol.users.get(dan.id).user_name == "dan@example.com"
    listed = {(t.created_by_username, t.comment) for t in carol.token_management.list()}
    assert ("carol@example.com", "mine") in listed and ("admin", "admin token created at first start") in listed

    # Deactivated, carol's tokens stop working; reactivated, they work again.
    # (The SDK drops a falsy `value`, so False goes inside an object.)
    w.users.patch(me.id, schemas=PATCH, operations=[iam.Patch(op=iam.PatchOp.REPLACE, value={"active": False})])
    with pytest.raises(Unauthenticated):
        server.client(own.token_value).current_user.me()
    w.users.patch(me.id, schemas=PATCH, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value=True)])
    assert server.client(own.token_value).current_user.me().user_name == "carol@example.com"


def test_service_principal_with_an_on_behalf_of_token(server):
    w = server.client()
    sp = w.service_principals.create(display_name="etl-bot",
                                     entitlements=[iam.ComplexValue(value="databricks-sql-access")])
    assert sp.application_id and sp.active
    assert w.service_principals.get(sp.id).display_name == "etl-bot"
    assert [s.id for s in w.service_principals.list(filter=f'applicationId eq "{sp.application_id}"')] == [sp.id]

    obo = w.token_management.create_obo_token(application_id=sp.application_id, comment="for etl",
                                              lifetime_seconds=600)
    bot = server.client(obo.token_value)
    me = bot.current_user.me()
    assert me.id == sp.id and me.display_name == "etl-bot"
    infos = w.token_management.list(created_by_username=sp.application_id)
    assert [(t.token_id, t.comment) for t in infos] == [(obo.token_info.token_id, "for etl")]
    assert w.token_management.get(obo.token_info.token_id).token_info.owner_id == int(sp.id)
    with pytest.raises(PermissionDenied):
        bot.token_management.list()

    w.token_management.delete(obo.token_info.token_id)
    with pytest.raises(Unauthenticated):
        bot.current_user.me()
    with pytest.raises(NotFound):
        w.token_management.delete(obo.token_info.token_id)
    with pytest.raises(NotFound):
        w.token_management.create_obo_token(application_id="no-such-app")
    w.service_principals.delete(sp.id)
    with pytest.raises(NotFound):
        w.service_principals.get(sp.id)


def test_bad_input_is_refused_and_changes_nothing(server):
    w = server.client()
    erin = w.users.create(user_name="erin@example.com")
    with pytest.raises(ResourceConflict):
        w.users.create(user_name="erin@example.com")
    with pytest.raises(BadRequest, match="userName cannot change"):
        w.users.update(erin.id, user_name="someone@example.com")
    with pytest.raises(BadRequest, match="Unknown entitlement"):
        w.users.create(user_name="fay@example.com", entitlements=[iam.ComplexValue(value="be-root")])
    with pytest.raises(BadRequest, match="Invalid filter"):
        list(w.users.list(filter='userName xx "a"'))
    with pytest.raises(BadRequest, match="does not exist"):
        w.groups.create(display_name="ghosts", members=[iam.ComplexValue(value="123")])
    (admins,) = w.groups.list(filter='displayName eq "admins"')
    with pytest.raises(BadRequest, match="cannot be deleted"):
        w.groups.delete(admins.id)
    with pytest.raises(BadRequest, match="op"):
        w.users.patch(erin.id, schemas=PATCH, operations=[iam.Patch(path="active", value=False)])
    with pytest.raises(NotFound):
        w.users.get("42")
    with pytest.raises(NotFound):
        w.service_principals.get(erin.id)
    r = server.raw("GET", "/api/2.0/preview/scim/v2/Users/42")
    assert r.status_code == 404 and r.json()["status"] == "404" and "not found" in r.json()["detail"]
    assert {u.user_name for u in w.users.list(filter='userName sw "fay"')} == set()
    assert w.users.get(erin.id).active


def test_the_audit_log_names_each_principal(server):
    w = server.client()
    grace = server.client(server.cli_token("grace@example.com"))
    grace.current_user.me()
    (warehouse,) = list(w.warehouses.list())
    r = w.statement_execution.execute_statement(
        warehouse_id=warehouse.id, wait_timeout="50s",
        statement="SELECT DISTINCT user_identity.email FROM system.access.audit WHERE service_name = 'scim'")
    assert r.status.state.value == "SUCCEEDED", r.status
    assert ["grace@example.com"] in r.result.data_array and ["admin"] in r.result.data_array


def test_allow_cluster_create_is_an_entitlement(server):
    w = server.client()
    erin = server.client(server.cli_token("erin@example.com"))
    with pytest.raises(PermissionDenied, match="allow-cluster-create"):
        erin.clusters.create(cluster_name="mine", spark_version="16.4.x-scala2.13", num_workers=0)

    # Through a group it is in...
    builders = w.groups.create(display_name="builders", entitlements=[iam.ComplexValue(value="allow-cluster-create")],
                               members=[iam.ComplexValue(value=erin.current_user.me().id)])
    cluster_id = erin.clusters.create(cluster_name="mine", spark_version="16.4.x-scala2.13", num_workers=0).cluster_id
    assert w.clusters.get(cluster_id).creator_user_name == "erin@example.com"
    w.clusters.permanent_delete(cluster_id)
    w.groups.delete(builders.id)
    with pytest.raises(PermissionDenied):
        erin.clusters.create(cluster_name="again", spark_version="16.4.x-scala2.13", num_workers=0)

    # ...or its own.
    me = erin.current_user.me()
    w.users.patch(me.id, operations=[iam.Patch(op=iam.PatchOp.ADD, path="entitlements",
                                               value=[{"value": "allow-cluster-create"}])],
                  schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP])
    cluster_id = erin.clusters.create(cluster_name="own", spark_version="16.4.x-scala2.13", num_workers=0).cluster_id
    w.clusters.permanent_delete(cluster_id)
