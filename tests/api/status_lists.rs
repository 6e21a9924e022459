//! Token Status Lists: the signed list, read as a meeting server would (the JWKS, jsonwebtoken
//! and an independent inflate), on the instance that changed a value and on its sibling.

use std::{collections::HashSet, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use jsonwebtoken::{jwk::Jwk, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use vouch::{
    services::status_lists,
    status_list::{StatusRef, StatusValue},
};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, token_part, TestApp};

/// A list as a verifier sees it.
pub(crate) struct Fetched {
    header: Value,
    claims: Value,
    bytes: Vec<u8>,
}

impl Fetched {
    pub(crate) fn value(&self, idx: u32) -> u8 {
        (self.bytes[(idx / 4) as usize] >> ((idx % 4) * 2)) & 0b11
    }
}

/// Fetch list `id` with `key`, check the signature against the JWKS with jsonwebtoken, and
/// inflate `lst` with miniz_oxide (not the zlib the service compresses with).
pub(crate) async fn fetch(app: &TestApp, list_id: i64, key: Option<&str>) -> Fetched {
    let res = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/status-lists/{list_id}"),
            key,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/statuslist+jwt"
    );
    let token = res.text().await.unwrap();
    let header = token_part(&token, 0);
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the list's kid is in the JWKS")
        .clone();
    let jwk: Jwk = serde_json::from_value(jwk).unwrap();
    let alg: jsonwebtoken::Algorithm = header["alg"].as_str().unwrap().parse().unwrap();
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
    let claims =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .expect("the list verifies with the JWKS")
            .claims;
    let compressed = B64
        .decode(claims["status_list"]["lst"].as_str().unwrap())
        .unwrap();
    let bytes = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).expect("zlib");
    Fetched {
        header,
        claims,
        bytes,
    }
}

async fn allocate(app: &TestApp, account_id: &str) -> StatusRef {
    let txn = app.hold_write_lock().await;
    let at = status_lists::allocate(&*txn, account_id).await.unwrap();
    txn.commit().await.unwrap();
    at
}

async fn set(app: &TestApp, account_id: &str, value: StatusValue) -> bool {
    let txn = app.hold_write_lock().await;
    let changed = status_lists::set(&*txn, account_id, value).await.unwrap();
    txn.commit().await.unwrap();
    changed
}

#[tokio::test]
async fn a_meeting_server_reads_a_new_accounts_status_from_the_signed_list() {
    let app = spawn_app().await;
    let account = app.create_account("tsl-new").await;
    let id = account["id"].as_str().unwrap();
    let at = allocate(&app, id).await;
    assert_eq!(at.list_id, 1);
    assert!(at.idx < 1 << 20);
    // Allocation is idempotent: an account keeps its index.
    assert_eq!(allocate(&app, id).await, at);
    assert_eq!(
        status_lists::position(&app.db().await, id).await.unwrap(),
        Some(at)
    );

    let list = fetch(&app, 1, Some(&app.meeting_key)).await;
    assert_eq!(list.header["typ"], "statuslist+jwt");
    assert_eq!(list.header["alg"], "EdDSA");
    let uri = format!("{}/v1/status-lists/1", app.settings.tokens.issuer);
    assert_eq!(list.claims["sub"], uri.as_str());
    assert_eq!(list.claims["ttl"], 60);
    assert_eq!(list.claims["status_list"]["bits"], 2);
    let iat = list.claims["iat"].as_i64().unwrap();
    let exp = list.claims["exp"].as_i64().unwrap();
    assert!(exp >= iat + 60, "a list cached for its ttl never expires");
    assert!((iat - chrono::Utc::now().timestamp()).abs() < 60);
    // 2^20 indices of 2 bits; a new account is not entitled yet (1), like unused indices.
    assert_eq!(list.bytes.len(), 1 << 18);
    assert_eq!(list.value(at.idx), 1);
    assert!(list.bytes.iter().all(|b| *b == 0x55));

    // The claim tokens carry points at this list and index.
    let claim = vouch::status_list::status_claim(&at, &app.settings.tokens.issuer);
    assert_eq!(claim["status_list"]["uri"], uri.as_str());
    assert_eq!(claim["status_list"]["idx"], at.idx);
}

#[tokio::test]
async fn a_change_on_one_instance_is_served_by_its_sibling_within_a_second() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let a = app.create_account("tsl-a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_account("tsl-b").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at_a = allocate(&app, &a).await;
    let at_b = allocate(&app, &b).await;
    assert_ne!(at_a.idx, at_b.idx);

    for (value, bits) in [
        (StatusValue::Entitled, 0),
        (StatusValue::Suspended, 2),
        (StatusValue::NotEntitled, 1),
        (StatusValue::Entitled, 0),
    ] {
        assert!(set(&app, &a, value).await);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for instance in [&sibling, &app] {
            let list = fetch(instance, at_a.list_id, Some(&instance.admin_key)).await;
            assert_eq!(list.value(at_a.idx), bits, "{value:?}");
            assert_eq!(list.value(at_b.idx), 1, "the other account is untouched");
        }
    }
    // Setting the value it has is no change.
    assert!(!set(&app, &a, StatusValue::Entitled).await);
    assert_eq!(
        status_lists::value(&app.db().await, &a).await.unwrap(),
        Some(StatusValue::Entitled)
    );

    // Erasure sets an account's index to 1; the index is never handed out again.
    let res = app
        .delete(&format!("/v1/accounts/{a}"), &app.admin_key)
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        fetch(&sibling, at_a.list_id, Some(&sibling.meeting_key))
            .await
            .value(at_a.idx),
        1
    );
    assert_eq!(
        status_lists::position(&app.db().await, &a).await.unwrap(),
        Some(at_a)
    );
}

#[tokio::test]
async fn set_gives_an_account_without_an_index_one() {
    let app = spawn_app().await;
    let id = app.create_account("tsl-set").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(set(&app, &id, StatusValue::Suspended).await);
    let at = status_lists::position(&app.db().await, &id)
        .await
        .unwrap()
        .expect("set allocated an index");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        fetch(&app, at.list_id, Some(&app.meeting_key))
            .await
            .value(at.idx),
        2
    );
}

#[tokio::test]
async fn full_lists_are_followed_by_new_ones_with_indices_in_random_order() {
    let app = spawn_app().await;
    let mut first = Vec::new();
    let mut second = Vec::new();
    let txn = app.hold_write_lock().await;
    for n in 0..70 {
        let at = status_lists::allocate_sized(&*txn, &format!("acc_test{n}"), 64)
            .await
            .unwrap();
        match at.list_id {
            1 => first.push(at.idx),
            2 => second.push(at.idx),
            other => panic!("list {other}"),
        }
    }
    txn.commit().await.unwrap();
    assert_eq!(first.len(), 64);
    assert_eq!(second.len(), 6);
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..64).collect::<Vec<u32>>(), "every index once");
    assert_ne!(first, sorted, "indices are not handed out in order");
    assert!(second.iter().all(|i| *i < 64));
    assert_eq!(second.iter().collect::<HashSet<_>>().len(), 6);

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let list = fetch(&app, 2, Some(&app.meeting_key)).await;
    assert_eq!(
        list.bytes.len(),
        16,
        "a list keeps the size it was created with"
    );
    assert_eq!(
        list.claims["sub"],
        format!("{}/v1/status-lists/2", app.settings.tokens.issuer).as_str()
    );
}

#[tokio::test]
async fn lists_are_for_meeting_servers_unless_public() {
    let app = spawn_app().await;
    let id = app.create_account("tsl-roles").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    allocate(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = app
        .request(reqwest::Method::GET, "/v1/status-lists/1", None, None)
        .await;
    assert_problem(res, 401, "missing_credentials").await;
    for key in [&app.backend_key, &app.reviewer_key] {
        assert_problem(app.get("/v1/status-lists/1", key).await, 403, "forbidden").await;
    }
    let res = app.get("/v1/status-lists/1", &app.meeting_key).await;
    assert_eq!(
        res.headers()["cache-control"].to_str().unwrap(),
        "private, max-age=60"
    );

    let public = spawn_app_with(|s| {
        s.status_lists.public = true;
        s.status_lists.ttl_seconds = 30;
    })
    .await;
    let id = public.create_account("tsl-public").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    allocate(&public, &id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = fetch(&public, 1, None).await;
    assert_eq!(list.claims["ttl"], 30);
    let res = public
        .request(reqwest::Method::GET, "/v1/status-lists/1", None, None)
        .await;
    assert_eq!(
        res.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=30"
    );
}

#[tokio::test]
async fn unknown_lists_are_not_found() {
    let app = spawn_app().await;
    let id = app.create_account("tsl-404").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    allocate(&app, &id).await;
    for path in [
        "2",
        "999",
        "0",
        "-1",
        "abc",
        "1.0",
        "+1",
        "99999999999999999999",
    ] {
        let res = app
            .get(&format!("/v1/status-lists/{path}"), &app.meeting_key)
            .await;
        assert_problem(res, 404, "status_list_not_found").await;
    }
    // Nothing is created by asking.
    let public = spawn_app_with(|s| s.status_lists.public = true).await;
    let res = public
        .request(reqwest::Method::GET, "/v1/status-lists/1", None, None)
        .await;
    assert_problem(res, 404, "status_list_not_found").await;
}

/// Accounts created before the status-list migration get an index from it: distinct, in
/// random order, value 1 until their decision is computed.
#[tokio::test]
async fn the_migration_gives_existing_accounts_an_index() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{
        sea_query::{Alias, Query},
        ConnectionTrait, Database,
    };

    let mut settings = crate::helpers::test_settings().await;
    let url = secrecy::ExposeSecret::expose_secret(&settings.database_url).to_owned();
    let conn = Database::connect(url.as_str()).await.unwrap();
    let ours = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261202_000002_status_lists")
        .expect("the status-list migration is registered");
    Migrator::up(&conn, Some(ours as u32)).await.unwrap();
    let now = chrono::Utc::now();
    let ids: Vec<String> = (0..40).map(|n| format!("acc_before{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        conn.execute(
            Query::insert()
                .into_table(Alias::new("account"))
                .columns(
                    [
                        "id",
                        "external_id",
                        "status",
                        "email_verified",
                        "phone_verified",
                        "created_at",
                        "updated_at",
                    ]
                    .map(Alias::new),
                )
                .values_panic([
                    id.clone().into(),
                    format!("before-{n}").into(),
                    "active".into(),
                    false.into(),
                    false.into(),
                    now.into(),
                    now.into(),
                ]),
        )
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    settings.database_url = secrecy::SecretString::from(url);
    let app = crate::helpers::spawn_with_settings(settings, true).await;
    let mut indices = Vec::new();
    for id in &ids {
        let at = status_lists::position(&app.db().await, id)
            .await
            .unwrap()
            .expect("an existing account has an index");
        assert_eq!(at.list_id, 1);
        assert_eq!(
            status_lists::value(&app.db().await, id).await.unwrap(),
            Some(StatusValue::NotEntitled)
        );
        indices.push(at.idx);
    }
    assert_eq!(indices.iter().collect::<HashSet<_>>().len(), ids.len());
    assert!(
        indices.iter().any(|i| *i >= ids.len() as u32),
        "drawn from the whole list, not numbered in order"
    );
    // New accounts continue in the same list, on a free index.
    let new = allocate(&app, "acc_after").await;
    assert_eq!(new.list_id, 1);
    assert!(!indices.contains(&new.idx));
    assert!(set(&app, &ids[7], StatusValue::Entitled).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let list = fetch(&app, 1, Some(&app.meeting_key)).await;
    assert_eq!(list.value(indices[7]), 0);
    assert_eq!(list.value(indices[8]), 1);
}
