//! Each role attempts the others' work, and Postgres refuses it.

use super::{allowed, refused};
use runledger_readmodel::ALL;
use runledger_test_support::{TestDb, TestRoles};

/// A migrated, granted database whose read models the projector's role has built (so they are
/// the projector's, as in a deployment).
async fn granted() -> (TestDb, TestRoles) {
    let db = TestDb::create().await;
    let roles = TestRoles::grant(&db).await;
    let projector = roles.pool(&db, &roles.roles.projector()).await;
    runledger_projections::rebuild(&projector, &ALL, |_| {})
        .await
        .expect("the projector's role builds the read models");
    projector.close().await;
    (db, roles)
}

/// An event row as the log stores it, for insert attempts.
const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, stream_id, stream_version, \
     type, schema_version, recorded_at, actor, command_id, data) VALUES (1, gen_random_uuid(), \
     'user-mallory', 1, 'user_registered', 1, now(), 'mallory', gen_random_uuid(), \
     '{\"username\": \"mallory\", \"role\": \"admin\"}')";

#[tokio::test]
async fn the_gateway_role_cannot_change_the_log_but_does_its_own_work() {
    let (db, roles) = granted().await;
    let gateway = roles.pool(&db, &roles.roles.gateway()).await;

    for attack in [
        INSERT_EVENT,
        "DROP TRIGGER events_append_only ON events",
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE log_head SET position = 100",
        "INSERT INTO commands VALUES (gen_random_uuid(), 'x', 'm', true, '{}', now())",
        "INSERT INTO event_seals (position, chain_hash) VALUES (1, sha256('x'))",
        "UPDATE projection_checkpoints SET position = 0",
        "UPDATE rm_runs.runs SET status = 'passed'",
        "DELETE FROM rm_users.users",
        "DROP SCHEMA rm_runs CASCADE",
        "CREATE SCHEMA rm_evil",
        "CREATE TABLE public.planted (x int)",
        "DROP TABLE gateway.tokens",
    ] {
        refused(&gateway, attack).await;
    }

    // Its own work: read the log and the read models, keep its sessions.
    for own in [
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM log_head",
        "SELECT count(*) FROM projection_checkpoints",
        "SELECT count(*) FROM rm_runs.runs",
        "SELECT count(*) FROM rm_machines.machines",
        "INSERT INTO gateway.tokens (token_hash, username, role, expires_at) \
         VALUES ('\\x01', 'ada', 'admin', now() + interval '1 hour')",
        "UPDATE gateway.tokens SET revoked_at = now()",
        "DELETE FROM gateway.tokens WHERE expires_at < now()",
    ] {
        allowed(&gateway, own).await;
    }

    // Tables added later get the same grants without editing the grants: one the owner adds
    // to schema `gateway` (a migration), one the projector adds to a read model.
    allowed(&db.pool, "CREATE TABLE gateway.added_later (k text)").await;
    allowed(&gateway, "INSERT INTO gateway.added_later VALUES ('k')").await;
    let projector = roles.pool(&db, &roles.roles.projector()).await;
    allowed(&projector, "CREATE TABLE rm_users.added_later (k text)").await;
    allowed(&gateway, "SELECT count(*) FROM rm_users.added_later").await;
    refused(&gateway, "INSERT INTO rm_users.added_later VALUES ('k')").await;

    projector.close().await;
    gateway.close().await;
    roles.cleanup(db).await;
}

#[tokio::test]
async fn the_projector_role_writes_only_its_read_models() {
    let (db, roles) = granted().await;
    let projector = roles.pool(&db, &roles.roles.projector()).await;

    for attack in [
        INSERT_EVENT,
        "UPDATE log_head SET position = 100",
        "DROP TRIGGER events_append_only ON events",
        "INSERT INTO commands VALUES (gen_random_uuid(), 'x', 'm', true, '{}', now())",
        "INSERT INTO event_seals (position, chain_hash) VALUES (1, sha256('x'))",
        "SELECT count(*) FROM gateway.tokens",
        "CREATE TABLE public.planted (x int)",
    ] {
        refused(&projector, attack).await;
    }
    for own in [
        "SELECT count(*) FROM events",
        "UPDATE projection_checkpoints SET updated_at = now()",
        "DELETE FROM rm_runs.runs",
        "CREATE SCHEMA rm_scratch",
        "DROP SCHEMA rm_scratch",
    ] {
        allowed(&projector, own).await;
    }

    // May create schemas, so it tries to shadow the log for the gateway: a schema named after
    // the gateway's role, first on the default search path, with its own `events`.
    let gateway_role = roles.roles.gateway();
    allowed(&projector, &format!("CREATE SCHEMA {gateway_role}")).await;
    allowed(
        &projector,
        &format!("CREATE TABLE {gateway_role}.events AS SELECT 1 AS planted"),
    )
    .await;
    let gateway = roles.pool(&db, &gateway_role).await;
    // The planted table has no such columns: the gateway still reads the log.
    allowed(&gateway, "SELECT position, stream_id FROM events").await;

    gateway.close().await;
    projector.close().await;
    roles.cleanup(db).await;
}

#[tokio::test]
async fn the_handler_role_appends_to_the_log_and_cannot_touch_read_models() {
    let (db, roles) = granted().await;
    let handler = roles.pool(&db, &roles.roles.handler()).await;

    for attack in [
        "SELECT count(*) FROM rm_runs.runs",
        "UPDATE rm_runs.runs SET status = 'passed'",
        "DROP SCHEMA rm_runs CASCADE",
        "UPDATE projection_checkpoints SET position = 0",
        "SELECT count(*) FROM gateway.tokens",
        "UPDATE events SET actor = 'someone else'",
        "DELETE FROM event_seals",
        "DROP TRIGGER events_append_only ON events",
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "CREATE SCHEMA rm_evil",
    ] {
        refused(&handler, attack).await;
    }
    allowed(&handler, INSERT_EVENT).await;
    // An event the gateway's trigger (a function in schema `gateway`) notifies about.
    allowed(
        &handler,
        &INSERT_EVENT
            .replace("VALUES (1,", "VALUES (2,")
            .replace("1, 'user_registered'", "2, 'user_disabled'"),
    )
    .await;
    allowed(&handler, "UPDATE log_head SET position = 1").await;
    allowed(&handler, "SELECT count(*) FROM commands").await;

    handler.close().await;
    roles.cleanup(db).await;
}

/// Role names are cluster-wide: two installs (here two databases) granting the same roles at
/// the same moment both succeed, and running the grants again changes nothing.
#[tokio::test]
async fn grants_are_idempotent_and_safe_to_run_concurrently() {
    let (first, second) = tokio::join!(TestDb::create(), TestDb::create());
    let roles = TestRoles::unique();
    let none = runledger_store::roles::RolePasswords::default();
    let (a, b) = tokio::join!(
        runledger_store::roles::grant(&first.pool, &roles.roles, &none),
        runledger_store::roles::grant(&second.pool, &roles.roles, &none),
    );
    a.expect("the first grant");
    b.expect("the concurrent grant");
    runledger_store::roles::grant(&first.pool, &roles.roles, &none)
        .await
        .expect("the same grant again");
    let gateway = roles.pool(&first, &roles.roles.gateway()).await;
    refused(&gateway, INSERT_EVENT).await;
    gateway.close().await;
    second.cleanup().await;
    roles.cleanup(first).await;
}

/// The set-up docs/security.md recommends: the owner is no superuser, only `CREATEROLE` and the
/// database's owner; it migrates, grants, and the gateway's role is held to its work.
#[tokio::test]
async fn an_owner_without_superuser_migrates_and_grants() {
    let admin_url = std::env::var("RUNLEDGER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    let roles = TestRoles::unique();
    let owner = format!("{}_owner", roles.roles.prefix());
    let database = format!("{}_db", roles.roles.prefix());
    allowed(&admin, &format!("CREATE ROLE {owner} LOGIN CREATEROLE")).await;
    allowed(&admin, &format!("CREATE DATABASE {database} OWNER {owner}")).await;
    let (scheme, rest) = admin_url.split_once("://").unwrap();
    let host = rest.split('/').next().unwrap().rsplit('@').next().unwrap();
    let url_as = |role: &str| format!("{scheme}://{role}@{host}/{database}");

    let owner_pool = runledger_store::connect(&url_as(&owner), 2).await.unwrap();
    runledger_store::migrate(&owner_pool).await.unwrap();
    let none = runledger_store::roles::RolePasswords::default();
    let at = runledger_store::roles::grant(&owner_pool, &roles.roles, &none)
        .await
        .expect("a CREATEROLE owner may grant");
    assert_eq!(at.owner, owner);
    let projector = runledger_store::connect(&url_as(&roles.roles.projector()), 2)
        .await
        .unwrap();
    runledger_projections::rebuild(&projector, &ALL, |_| {})
        .await
        .unwrap();
    let gateway = runledger_store::connect(&url_as(&roles.roles.gateway()), 2)
        .await
        .unwrap();
    refused(&gateway, INSERT_EVENT).await;
    refused(&gateway, "DROP TRIGGER events_append_only ON events").await;
    allowed(&gateway, "SELECT count(*) FROM rm_runs.runs").await;
    // The owner reads the read models (the CLI) through its membership of the projector's role.
    allowed(&owner_pool, "SELECT count(*) FROM rm_runs.runs").await;

    for pool in [owner_pool, projector, gateway] {
        pool.close().await;
    }
    allowed(&admin, &format!("DROP DATABASE {database} WITH (FORCE)")).await;
    let all = roles.roles.all().join(", ");
    allowed(&admin, &format!("DROP ROLE {all}, {owner}")).await;
    admin.close().await;
}
