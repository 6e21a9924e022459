//! Rate limits and SMS-fraud budgets, each holding under concurrency.

use super::*;

#[tokio::test]
async fn per_destination_limit_holds_under_concurrency_per_account() {
    let rig = rig().await;
    let account = rig.app.account("user-dest").await;
    let results = join_all((0..12).map(|_| rig.send(&account, "email", "gus@example.org"))).await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let wait = retry_after(&res);
                assert!((1..=600).contains(&wait), "Retry-After {wait}");
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "destination");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 5);
    // The same destination in another spelling is the same destination...
    let body = assert_problem(
        rig.send(&account, "email", "Gus@Example.org").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "destination");
    // ...another one is not limited by it...
    rig.send_ok(&account, "email", "gus.other@example.org")
        .await;
    // ...and the limit is this account's own: another account's sends to the destination do
    // not count against it, nor its sends against the other's.
    let other = rig.app.account("user-dest-2").await;
    rig.send_ok(&other, "email", "Gus@Example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(601));
    rig.send_ok(&account, "email", "gus@example.org").await;
}

#[tokio::test]
async fn a_strangers_sends_to_a_number_do_not_lock_its_owner_out() {
    let rig = rig_with(|s| s.verification.young_account_sms_hourly_limit = 10).await;
    let stranger = rig.app.account("user-stranger").await;
    for _ in 0..5 {
        rig.send_ok(&stranger, "sms", PHONE).await;
    }
    let res = rig.send(&stranger, "sms", "+1 415-555-2671").await;
    assert!((1..=600).contains(&retry_after(&res)));
    let body = assert_problem(res, 429, "rate_limited").await;
    assert_eq!(body["limit"], "destination");
    // The owner of the number is not blocked by the stranger's sends (once those are out, the
    // next SMS to the number is the owner's).
    rig.outbox_idle().await;
    let owner = rig.app.account("user-owner").await;
    let (vid, code) = rig.sms_code(&owner, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    assert_eq!(rig.entitlement(&owner).await["granted"], true);
}

#[tokio::test]
async fn per_account_limit_holds_under_concurrency() {
    let rig = rig().await;
    let account = rig.app.account("user-acct").await;
    let results = join_all((0..15).map(|i| {
        let to = format!("hal{i}@example.org");
        let rig = &rig;
        let account = &account;
        async move { rig.send(account, "email", &to).await }
    }))
    .await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let wait = retry_after(&res);
                assert!((1..=3600).contains(&wait), "Retry-After {wait}");
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "account");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 10);
    let other = rig.app.account("user-acct-2").await;
    rig.send_ok(&other, "email", "hal0@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&account, "email", "hal99@example.org").await;
}

#[tokio::test]
async fn the_global_sms_budget_holds_under_concurrency() {
    let rig = rig_with(|s| {
        s.verification.sms_hourly_budget = 3;
        s.verification.sms_country_hourly_budget = 3;
        s.verification.young_accounts_sms_hourly_budget = 3;
    })
    .await;
    // Established accounts sending to six countries: only the global budget applies.
    let accounts = rig.established_accounts("user-budget", 6).await;
    let results = join_all(accounts.iter().zip(WORLD).map(|(account, to)| {
        let rig = &rig;
        async move { rig.send(account, "sms", to).await }
    }))
    .await;
    let mut created = 0;
    for res in results {
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                assert!((1..=3600).contains(&retry_after(&res)));
                let body = assert_problem(res, 429, "rate_limited").await;
                assert_eq!(body["limit"], "sms_budget");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 3);
    // Email is not part of the SMS budget; the budget refills after an hour.
    rig.send_ok(&accounts[0], "email", "ivy@example.org").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[5], "sms", "+14155550199").await;
}

#[tokio::test]
async fn a_countrys_budget_holds_under_concurrency_and_leaves_the_rest_of_the_world() {
    let rig = rig_with(|s| {
        s.verification.sms_country_hourly_budget = 3;
        s.verification
            .sms_country_hourly_budgets
            .insert("de".into(), 5);
    })
    .await;
    let accounts = rig.established_accounts("user-country", 8).await;
    // Eight numbers of one country (consecutive, so also one prefix, whose limit is higher).
    let gb: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+4420794609{}", 50 + i)))
        .collect();
    let created = created_or_limited(rig.send_all(&gb).await, "sms_country").await;
    assert_eq!(created, 3);
    // The override gives Germany its own budget.
    let de: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+49301234{}", 50 + i)))
        .collect();
    let created = created_or_limited(rig.send_all(&de).await, "sms_country").await;
    assert_eq!(created, 5);
    // The rest of the world still gets its codes, from the same accounts.
    for (account, to) in accounts.iter().zip(&WORLD) {
        if !to.starts_with("+44") && !to.starts_with("+49") {
            rig.send_ok(account, "sms", to).await;
        }
    }
    // The country's budget refills after an hour.
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[0], "sms", "+442079460958").await;
    // Nothing about the number is in the send log but keyed hashes.
    let log = verification_send::Entity::find()
        .all(&rig.app.db().await)
        .await
        .unwrap();
    assert!(log.iter().any(|s| s.region.as_deref() == Some("GB")));
    for send in log {
        // Every text column (not the timestamp, whose digits may spell anything).
        let texts = [
            send.account_id.as_str(),
            send.channel.as_str(),
            send.destination_hash.as_str(),
            send.region.as_deref().unwrap_or(""),
            send.prefix_hash.as_deref().unwrap_or(""),
        ];
        for text in texts {
            assert!(!text.contains("2079") && !text.contains("44207"), "{text}");
        }
    }
}

#[tokio::test]
async fn the_prefix_velocity_limit_holds_under_concurrency() {
    let rig = rig_with(|s| s.verification.sms_prefix_hourly_limit = 4).await;
    let accounts = rig.established_accounts("user-prefix", 7).await;
    // +1 415 555 01xx: one exchange, seven digits with the country code.
    let sends: Vec<(&str, String)> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "sms_prefix").await;
    assert_eq!(created, 4);
    // Another exchange of the same area code is another prefix.
    rig.send_ok(&accounts[6], "sms", "+14155560100").await;
    rig.app.clock.advance(chrono::Duration::seconds(3601));
    rig.send_ok(&accounts[6], "sms", "+14155550109").await;
}

#[tokio::test]
async fn the_lifetime_cap_holds_under_concurrency_and_survives_pruning() {
    let rig = rig_with(|s| s.verification.sms_account_lifetime_limit = 3).await;
    let accounts = rig.established_accounts("user-lifetime", 2).await;
    let account = accounts[0].as_str();
    let sends: Vec<(&str, String)> = (0..6)
        .map(|i| (account, format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "sms_lifetime").await;
    assert_eq!(created, 3);

    // Long after every window, with the send log pruned (the delivery worker's housekeeping
    // does that; here it is done in the database), the cap still holds.
    rig.app.clock.advance(chrono::Duration::days(30));
    {
        use sea_orm::ConnectionTrait;
        rig.app
            .db()
            .await
            .execute_unprepared("DELETE FROM verification_send")
            .await
            .unwrap();
    }
    let res = rig.send(account, "sms", "+12125550100").await;
    assert_eq!(created_or_limited(vec![res], "sms_lifetime").await, 0);
    // Email is not capped, nor is another account.
    rig.send_ok(account, "email", "lou@example.org").await;
    rig.send_ok(&accounts[1], "sms", "+12125550100").await;
}

#[tokio::test]
async fn the_lifetime_count_of_existing_accounts_starts_from_their_verifications() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;

    let mut settings = test_settings().await;
    settings.verification.sms_account_lifetime_limit = 3;
    // A database as the release before the SMS limits left it, with an account that was
    // already sent two SMS codes (and one email).
    let db = vouch::db::Db::connect(&settings).await.unwrap();
    Migrator::up(db.conn(), Some(5)).await.unwrap();
    let at = "'2026-01-01 00:00:00+00:00'";
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO account (id, external_id, email, display_name, status, \
             email_verified, phone_verified, created_at, updated_at) VALUES \
             ('acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b', 'user-old', NULL, NULL, 'active', \
             false, false, {at}, {at})"
        ))
        .await
        .unwrap();
    for (i, channel) in ["sms", "sms", "email"].iter().enumerate() {
        db.conn()
            .execute_unprepared(&format!(
                "INSERT INTO verification (id, account_id, channel, destination_hash, \
                 to_masked, code_hash, status, attempts, max_attempts, expires_at, \
                 created_at, updated_at, approved_at) VALUES \
                 ('ver_0192f5c8a3b47d2e9c1f0a6b5d4e3c2{i}', \
                 'acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b', '{channel}', 'h{i}', 'x', 'c', \
                 'expired', 0, 5, {at}, {at}, {at}, NULL)"
            ))
            .await
            .unwrap();
    }
    drop(db);

    let app = spawn_with_settings(settings, true).await;
    let path = "/v1/accounts/acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b/verifications";
    let body = json!({"channel": "sms", "to": PHONE});
    let res = app.post(path, &app.backend_key, &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.post(path, &app.backend_key, &body).await;
    assert_eq!(created_or_limited(vec![res], "sms_lifetime").await, 0);
}

#[tokio::test]
async fn young_accounts_get_a_smaller_hourly_limit() {
    let rig = rig_with(|s| s.verification.young_account_sms_hourly_limit = 3).await;
    let account = rig.app.account("user-young").await;
    let sends: Vec<(&str, String)> = (0..5)
        .map(|i| (account.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "young_account").await;
    assert_eq!(created, 3);
    // An hour later the account may send again, still as a young one.
    rig.app
        .clock
        .advance(chrono::Duration::seconds(86_400 - 100));
    let results = rig.send_all(&sends[..4]).await;
    // Retry-After says when the account stops being young, as that comes sooner than an hour.
    for res in results
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
    {
        let wait = retry_after(res);
        assert!((1..=100).contains(&wait), "Retry-After {wait}");
    }
    assert_eq!(created_or_limited(results, "young_account").await, 3);
    rig.app.clock.advance(chrono::Duration::seconds(101));
    // An established account has only the ordinary limits (here: 10 codes per hour).
    for i in 0..7 {
        rig.send_ok(&account, "sms", &format!("+1212555010{i}"))
            .await;
    }
    let body = assert_problem(
        rig.send(&account, "sms", "+12125550109").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "account");
}

#[tokio::test]
async fn fresh_accounts_cannot_spend_what_established_accounts_need() {
    let rig = rig_with(|s| {
        s.verification.sms_hourly_budget = 10;
        s.verification.sms_country_hourly_budget = 10;
        s.verification.young_accounts_sms_hourly_budget = 4;
    })
    .await;
    let established = rig.established_accounts("user-old", 1).await;
    let mut fresh = Vec::new();
    for i in 0..8 {
        fresh.push(rig.app.account(&format!("user-fresh-{i}")).await);
    }
    let sends: Vec<(&str, String)> = fresh
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("+1415555010{i}")))
        .collect();
    let created = created_or_limited(rig.send_all(&sends).await, "young_accounts_budget").await;
    assert_eq!(created, 4);
    // The rest of the budget is still there for established accounts.
    for i in 0..6 {
        rig.send_ok(&established[0], "sms", &format!("+1212555010{i}"))
            .await;
    }
    let body = assert_problem(
        rig.send(&established[0], "sms", "+4930123456").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(body["limit"], "sms_budget");
}

#[tokio::test]
async fn one_number_backs_at_most_three_accounts_even_under_concurrency() {
    let rig = rig_with(|s| s.verification.per_destination_limit = 50).await;
    let mut verified = Vec::new();
    for i in 0..2 {
        let account = rig.app.account(&format!("user-share-{i}")).await;
        let (vid, code) = rig.sms_code(&account, PHONE).await;
        assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
        verified.push(account);
    }
    // Three more accounts get codes while two slots are taken; only one may still approve.
    let mut pending = Vec::new();
    for i in 2..5 {
        let account = rig.app.account(&format!("user-share-{i}")).await;
        let (vid, code) = rig.sms_code(&account, PHONE).await;
        pending.push((account, vid, code));
    }
    let results = join_all(pending.iter().map(|(_, vid, code)| rig.check(vid, code))).await;
    let mut approved = 0;
    for res in results {
        match res.status().as_u16() {
            200 => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["status"], "approved", "{body}");
                approved += 1;
            }
            409 => {
                assert_problem(res, 409, "phone_in_use").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(approved, 1);
    let mut phone_accounts = 0;
    for (account, vid, _) in &pending {
        let status = rig.verification(vid).await["status"].clone();
        if rig.entitlement(account).await["granted"] == true {
            phone_accounts += 1;
            assert_eq!(status, "approved");
        } else {
            assert_eq!(status, "canceled");
        }
    }
    assert_eq!(phone_accounts, 1);

    // A fourth account is refused before any SMS is spent.
    let sent = rig.twilio.requests().len();
    let late = rig.app.account("user-share-late").await;
    assert_problem(rig.send(&late, "sms", PHONE).await, 409, "phone_in_use").await;
    // The same number in another notation is the same number.
    assert_problem(
        rig.send(&late, "sms", "+1 415-555-2671").await,
        409,
        "phone_in_use",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.twilio.requests().len(), sent);
    // An account that already holds the number may verify it again.
    let (vid, code) = rig.sms_code(&verified[0], PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");

    // Erasing an account frees its slot.
    let res = rig
        .app
        .delete(
            &format!("/v1/accounts/{}", verified[1]),
            &rig.app.backend_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (vid, code) = rig.sms_code(&late, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
}

#[tokio::test]
async fn the_reuse_limit_is_configurable() {
    let rig = rig_with(|s| s.verification.phone_max_accounts = 1).await;
    let first = rig.app.account("user-solo-1").await;
    let (vid, code) = rig.sms_code(&first, PHONE).await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    let second = rig.app.account("user-solo-2").await;
    assert_problem(rig.send(&second, "sms", PHONE).await, 409, "phone_in_use").await;
}
