//! The admin console in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against a running Vouch (the same `spawn_app` as the API tests, SQLite or PostgreSQL).

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod driver;

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use driver::{click, element, fill, js, screenshot, text_containing, with_browser};
use helpers::{spawn_app, TestApp};

const STATEMENT: &str = "We run a shelter for journalists in exile (ref Qmv-2291)";

async fn sign_in(client: &Client, app: &TestApp, key: &str) {
    client
        .goto(&app.url("/admin/"))
        .await
        .expect("open the console");
    fill(client, "#api-key", key).await;
    click(client, "#sign-in").await;
}

async fn account(app: &TestApp, external_id: &str) -> String {
    app.create_account(external_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Submit a request with `key` (the backend's, or an admin's); returns its id.
async fn submit(app: &TestApp, key: &str, account_id: &str, category: &str) -> String {
    let res = app
        .post(
            &format!("/v1/accounts/{account_id}/exceptions"),
            key,
            &json!({"category": category, "statement": STATEMENT, "organization": "Exile Desk"}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn api_json(app: &TestApp, path: &str, key: &str) -> Value {
    let res = app.get(path, key).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn statement_reads(app: &TestApp, eid: &str) -> Vec<Value> {
    api_json(
        app,
        &format!("/v1/admin/audit?target_id={eid}&action=exception.statement_read"),
        &app.admin_key,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn signing_in_with_a_bad_key_shows_why_and_a_good_key_shows_the_role() {
    let app = spawn_app().await;
    with_browser(|client| async move {
        // `/admin` leads to the console; nothing but the sign-in form before a key is given.
        client.goto(&app.url("/admin")).await.unwrap();
        assert_eq!(client.current_url().await.unwrap().path(), "/admin/");
        element(&client, "#api-key").await;
        assert!(!element(&client, "#who").await.is_displayed().await.unwrap());

        fill(&client, "#api-key", "vk_not-a-real-key").await;
        click(&client, "#sign-in").await;
        let shown = text_containing(
            &client,
            "#sign-in-result",
            "the API key is not valid or was revoked",
        )
        .await;
        assert!(shown.contains("invalid_credentials"), "{shown}");
        screenshot(&client, "admin-sign-in-refused").await;
        assert!(!element(&client, "#who").await.is_displayed().await.unwrap());

        // Keyboard only: type the key and press Enter.
        let input = element(&client, "#api-key").await;
        input.clear().await.unwrap();
        input
            .send_keys(&format!("{}\u{E007}", app.reviewer_key))
            .await
            .unwrap();
        text_containing(&client, "#who-name", "test-reviewer").await;
        text_containing(&client, "#who-role", "reviewer").await;
        // Reviewers land on the overview.
        text_containing(&client, "main h1", "Overview").await;
        let nav = element(&client, "#nav").await.text().await.unwrap();
        assert!(
            nav.contains("Exception queue") && nav.contains("Accounts"),
            "{nav}"
        );
        // A reviewer is not offered the admin pages.
        assert!(
            !nav.contains("Audit log") && !nav.contains("API clients"),
            "{nav}"
        );

        // The key is in this tab's sessionStorage only: not in the URL, not in a cookie.
        let url = client.current_url().await.unwrap();
        assert!(!url.as_str().contains(&app.reviewer_key), "{url}");
        assert_eq!(
            js(
                &client,
                "return sessionStorage.getItem('vouch.console.key')"
            )
            .await,
            Value::from(app.reviewer_key.clone())
        );
        assert_eq!(js(&client, "return document.cookie").await, "");
        assert!(client.get_all_cookies().await.unwrap().is_empty());

        // A reload keeps the session; signing out forgets the key.
        client.refresh().await.unwrap();
        text_containing(&client, "#who-name", "test-reviewer").await;
        click(&client, "#sign-out").await;
        element(&client, "#api-key").await;
        assert_eq!(
            js(
                &client,
                "return sessionStorage.getItem('vouch.console.key')"
            )
            .await,
            Value::Null
        );

        // An admin gets the admin pages too.
        fill(&client, "#api-key", &app.admin_key).await;
        click(&client, "#sign-in").await;
        text_containing(&client, "#who-role", "admin").await;
        let nav = text_containing(&client, "#nav", "Audit log").await;
        assert!(
            nav.contains("API clients") && nav.contains("Signing keys"),
            "{nav}"
        );
        click(&client, "#sign-out").await;

        // A key revoked while signed in ends the session at its next use.
        let created: Value = app
            .post(
                "/v1/admin/clients",
                &app.admin_key,
                &json!({"name": "short-lived-reviewer", "role": "reviewer"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let key = created["key"].as_str().unwrap();
        sign_in(&client, &app, key).await;
        text_containing(&client, "#who-name", "short-lived-reviewer").await;
        let id = created["id"].as_str().unwrap();
        let res = app
            .delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        click(&client, "#nav a[href='#/accounts']").await;
        text_containing(&client, "main", "You were signed out").await;
        text_containing(&client, "main", "the API key is not valid or was revoked").await;
        element(&client, "#api-key").await;
        assert_eq!(
            js(
                &client,
                "return sessionStorage.getItem('vouch.console.key')"
            )
            .await,
            Value::Null
        );
    })
    .await;
}

#[tokio::test]
async fn a_reviewer_approves_a_nonprofit_request_and_the_account_is_entitled() {
    let app = spawn_app().await;
    let acc = account(&app, "np-shelter").await;
    let eid = submit(&app, &app.backend_key, &acc, "nonprofit").await;
    let other = account(&app, "someone-at-risk").await;
    let other_eid = submit(&app, &app.backend_key, &other, "dissident").await;
    let before = api_json(
        &app,
        &format!("/v1/accounts/{acc}/entitlements"),
        &app.reviewer_key,
    )
    .await;
    assert_eq!(before["entitlements"]["e2ee"]["granted"], false);

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.reviewer_key).await;
        text_containing(&client, "main h1", "Overview").await;
        click(&client, "#nav a[href='#/queue']").await;
        // The queue: both requests and how many are pending.
        text_containing(&client, "#pending-count", "2 requests pending review").await;
        let queue = text_containing(&client, "main table", &eid).await;
        assert!(
            queue.contains(&other_eid) && queue.contains("nonprofit"),
            "{queue}"
        );
        let shot = screenshot(&client, "admin-queue").await;
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );

        // Filter by category.
        element(&client, "#filter-category")
            .await
            .select_by_value("nonprofit")
            .await
            .unwrap();
        click(&client, "form.filters button[type=submit]").await;
        text_containing(&client, "main table", &eid).await;
        assert!(client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("category=nonprofit"));
        let filtered = element(&client, "main table").await.text().await.unwrap();
        assert!(!filtered.contains(&other_eid), "{filtered}");

        // The request: metadata, no statement until revealed; the rule before the click.
        client
            .find(Locator::LinkText(&eid))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        text_containing(&client, "main h1", &eid).await;
        let rule = text_containing(&client, "#four-eyes", "Your approval completes it").await;
        assert!(rule.contains("nonprofit"), "{rule}");
        assert!(!client.source().await.unwrap().contains("Qmv-2291"));
        assert!(statement_reads(&app, &eid).await.is_empty());

        // A reason is required.
        click(&client, "#approve").await;
        text_containing(&client, "#decision-result", "A reason is required").await;
        assert_eq!(
            api_json(
                &app,
                &format!("/v1/exceptions/{eid}?sealed=false"),
                &app.admin_key
            )
            .await["status"],
            "pending"
        );
        fill(
            &client,
            "#decision-reason",
            "Registered charity, checked the registry",
        )
        .await;
        click(&client, "#approve").await;
        text_containing(&client, "main .notice", "Approved").await;
        text_containing(&client, "main dl", "approved").await;

        // The account page shows the entitlement granted, and why.
        client
            .find(Locator::LinkText(&acc))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let decision = text_containing(&client, "#entitlement-e2ee", "granted").await;
        assert!(!decision.contains("not granted"), "{decision}");
        assert!(decision.contains("nonprofit"), "{decision}");
        text_containing(&client, "main", &format!("exception:{eid}")).await;
        screenshot(&client, "admin-account").await;

        // And so does the API.
        let after = api_json(
            &app,
            &format!("/v1/accounts/{acc}/entitlements"),
            &app.backend_key,
        )
        .await;
        assert_eq!(after["entitlements"]["e2ee"]["granted"], true, "{after}");
        assert_eq!(
            after["entitlements"]["e2ee"]["satisfied_by"],
            json!(["nonprofit"])
        );
        let exc = api_json(
            &app,
            &format!("/v1/exceptions/{eid}?sealed=false"),
            &app.admin_key,
        )
        .await;
        assert_eq!(exc["status"], "approved");
        assert_eq!(exc["decided_by"], "test-reviewer");
    })
    .await;
}

#[tokio::test]
async fn the_four_eyes_rule_is_shown_and_the_apis_refusals_are_explained() {
    let app = spawn_app().await;
    // An admin may submit; it may then never decide its own request.
    let own_acc = account(&app, "admin-submitted").await;
    let own = submit(&app, &app.admin_key, &own_acc, "nonprofit").await;
    let acc = account(&app, "dissident-two-eyes").await;
    let dissident = submit(&app, &app.backend_key, &acc, "dissident").await;

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.admin_key).await;
        text_containing(&client, "#who-role", "admin").await;
        client
            .goto(&app.url(&format!("/admin/#/exceptions/{own}")))
            .await
            .unwrap();
        let rule = text_containing(&client, "#four-eyes", "You submitted this request").await;
        assert!(rule.contains("Four-eyes rule"), "{rule}");
        for button in ["#approve", "#deny"] {
            let b = element(&client, button).await;
            assert!(!b.is_enabled().await.unwrap(), "{button} is enabled");
            assert_eq!(
                b.attr("aria-describedby").await.unwrap().as_deref(),
                Some("four-eyes")
            );
        }
        // The console's rule is the API's rule.
        let res = app
            .post(
                &format!("/v1/exceptions/{own}/decision"),
                &app.admin_key,
                &json!({"decision": "approve", "reason": "mine"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.json::<Value>().await.unwrap()["code"], "four_eyes");

        // A dissident needs two reviewers: the admin's approval is the first of two.
        client
            .goto(&app.url(&format!("/admin/#/exceptions/{dissident}")))
            .await
            .unwrap();
        let rule = text_containing(&client, "#four-eyes", "needs 2 distinct reviewers").await;
        assert!(rule.contains("1 of 2"), "{rule}");
        fill(
            &client,
            "#decision-reason",
            "Known to our partner organisation",
        )
        .await;
        click(&client, "#approve").await;
        text_containing(
            &client,
            "main .notice",
            "Your approval is recorded (1 of 2)",
        )
        .await;
        let rule =
            text_containing(&client, "#four-eyes", "You already approved this request").await;
        assert!(rule.contains("as principal test-admin"), "{rule}");
        // The approvals name the person behind each key.
        text_containing(
            &client,
            "section[aria-labelledby='approvals-h']",
            "Principal",
        )
        .await;
        assert!(!element(&client, "#approve")
            .await
            .is_enabled()
            .await
            .unwrap());
        assert!(element(&client, "#deny").await.is_enabled().await.unwrap());
        text_containing(&client, "main", "test-admin").await;
        screenshot(&client, "admin-exception").await;

        // Meanwhile a second reviewer completes it; the page is now stale, and the API's
        // refusal is shown as it gave it.
        let res = app
            .post(
                &format!("/v1/exceptions/{dissident}/decision"),
                &app.reviewer_key,
                &json!({"decision": "approve", "reason": "second pair of eyes"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        fill(&client, "#decision-reason", "Changed my mind").await;
        click(&client, "#deny").await;
        let refusal = text_containing(
            &client,
            "#decision-result",
            "this request was already decided",
        )
        .await;
        assert!(refusal.contains("exception_decided"), "{refusal}");
        let exc = api_json(
            &app,
            &format!("/v1/exceptions/{dissident}?sealed=false"),
            &app.admin_key,
        )
        .await;
        assert_eq!(exc["status"], "approved");
    })
    .await;
}

#[tokio::test]
async fn revealing_a_statement_is_explicit_and_audited() {
    let app = spawn_app().await;
    let acc = account(&app, "reveal").await;
    let eid = submit(&app, &app.backend_key, &acc, "dissident").await;

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.admin_key).await;
        text_containing(&client, "#who-role", "admin").await;
        client
            .goto(&app.url(&format!("/admin/#/exceptions/{eid}")))
            .await
            .unwrap();
        text_containing(&client, "#sealed-h", "Statement").await;
        text_containing(&client, "main", "recorded in the audit log").await;
        assert!(!client.source().await.unwrap().contains("Qmv-2291"));
        assert!(statement_reads(&app, &eid).await.is_empty());

        click(&client, "#reveal").await;
        let shown = text_containing(&client, "#statement", "Qmv-2291").await;
        screenshot(&client, "admin-statement").await;
        assert_eq!(shown, STATEMENT);
        text_containing(&client, "#organization", "Exile Desk").await;
        let reads = statement_reads(&app, &eid).await;
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert_eq!(reads[0]["actor"], "test-admin");

        // The audit view shows the read, filtered, with the chain verified.
        click(&client, "#nav a[href='#/audit']").await;
        text_containing(&client, "#chain-status", "Hash chain intact").await;
        fill(&client, "#audit-action", "exception.statement_read").await;
        click(&client, "form.filters button[type=submit]").await;
        text_containing(&client, "main table", &eid).await;
        let rows = client
            .find_all(Locator::Css("main table tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows[0].text().await.unwrap();
        assert!(
            row.contains("exception.statement_read") && row.contains("test-admin"),
            "{row}"
        );
        // Never the text itself.
        assert!(!row.contains("Qmv-2291"), "{row}");
        screenshot(&client, "admin-audit").await;
    })
    .await;
}

#[tokio::test]
async fn admins_manage_clients_keys_and_account_status() {
    let app = spawn_app().await;
    let acc = app.entitled_account("suspend-me").await;

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.admin_key).await;
        text_containing(&client, "#who-role", "admin").await;

        // A new client's key is shown once, and works.
        click(&client, "#nav a[href='#/clients']").await;
        fill(&client, "#client-name", "reviewer-ann").await;
        // Bound to the person behind it: four eyes counts people, not keys.
        fill(&client, "#client-principal", "ann@example.org").await;
        element(&client, "#client-role")
            .await
            .select_by_value("reviewer")
            .await
            .unwrap();
        click(&client, "form.filters button[type=submit]").await;
        text_containing(&client, "#created-client", "shown this once").await;
        let key = element(&client, "#new-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(key.starts_with("vk_"), "{key}");
        screenshot(&client, "admin-clients").await;
        let me = api_json(&app, "/v1/me", &key).await;
        assert_eq!(me["name"], "reviewer-ann");
        assert_eq!(me["principal"], "ann@example.org");
        text_containing(&client, "#created-client", "principal ann@example.org").await;
        text_containing(&client, "main table", "ann@example.org").await;

        // Revoking takes a confirmation, then the key stops working.
        client
            .find(Locator::Css("button[aria-label='Revoke reviewer-ann']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click(
            &client,
            "button[aria-label='Confirm revoking reviewer-ann']",
        )
        .await;
        text_containing(&client, "main .notice", "reviewer-ann revoked").await;
        assert_eq!(
            app.get("/v1/me", &key).await.status(),
            StatusCode::UNAUTHORIZED
        );

        // Rotation: the first is accepted, a second while one waits is refused with the reason.
        click(&client, "#nav a[href='#/keys']").await;
        element(&client, "main table").await;
        click(&client, "#rotate").await;
        text_containing(&client, "main .notice", "published").await;
        text_containing(&client, "main table", "next").await;
        click(&client, "#rotate").await;
        text_containing(&client, "#rotate-result", "rotation_pending").await;

        // Suspension withdraws the entitlement; reactivation restores it.
        client
            .goto(&app.url(&format!("/admin/#/accounts/{acc}")))
            .await
            .unwrap();
        text_containing(&client, "#entitlement-e2ee", "granted").await;
        click(&client, "#status-start").await;
        click(&client, "#status-confirm").await;
        text_containing(&client, "main .notice", "Account suspended").await;
        text_containing(&client, "#account-status", "suspended").await;
        text_containing(&client, "#entitlement-e2ee", "not granted").await;
        let account = api_json(&app, &format!("/v1/accounts/{acc}"), &app.admin_key).await;
        assert_eq!(account["status"], "suspended");
        click(&client, "#status-start").await;
        click(&client, "#status-confirm").await;
        text_containing(&client, "#account-status", "active").await;
    })
    .await;
}

#[tokio::test]
async fn a_moderator_suspends_an_account_and_revokes_a_token_and_sees_nothing_else() {
    let app = spawn_app().await;
    let acc = app.entitled_account("reported-user").await;
    let other = app.entitled_account("someone-else").await;
    let token = app.issue_token(&other).await;

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.moderator_key).await;
        text_containing(&client, "#who-role", "moderator").await;
        // The start page of a moderator is the accounts list; the nav offers what the role
        // may do and nothing else.
        text_containing(&client, "main h1", "Accounts").await;
        let nav = element(&client, "#nav").await.text().await.unwrap();
        assert!(
            nav.contains("Accounts") && nav.contains("Revoke a token"),
            "{nav}"
        );
        for page in [
            "Exception queue",
            "Audit log",
            "API clients",
            "Signing keys",
            "Webhooks",
        ] {
            assert!(!nav.contains(page), "{page} offered to a moderator: {nav}");
        }
        client.goto(&app.url("/admin/#/queue")).await.unwrap();
        text_containing(&client, "main h1", "Not available for your role").await;

        // Find the reported account by the platform's id, suspend it.
        client.goto(&app.url("/admin/#/accounts")).await.unwrap();
        fill(&client, "#account-lookup", "reported-user").await;
        click(&client, "form.filters button[type=submit]").await;
        text_containing(&client, "main h1", &acc).await;
        // Evidence and exceptions are not the moderator's to read: not asked for, not shown.
        let main = element(&client, "main").await.text().await.unwrap();
        assert!(
            !main.contains("Evidence") && !main.contains("Exception requests"),
            "{main}"
        );
        click(&client, "#status-start").await;
        click(&client, "#status-confirm").await;
        text_containing(&client, "main .notice", "Account suspended").await;
        text_containing(&client, "#account-status", "suspended").await;
        screenshot(&client, "moderator-account").await;
        let account = api_json(&app, &format!("/v1/accounts/{acc}"), &app.admin_key).await;
        assert_eq!(account["status"], "suspended");
        let audit = api_json(
            &app,
            &format!("/v1/admin/audit?target_id={acc}&action=account.suspended"),
            &app.admin_key,
        )
        .await;
        assert_eq!(audit["items"][0]["actor"], "test-moderator");

        // Revoke a reported token.
        click(&client, "#nav a[href='#/revoke']").await;
        fill(&client, "#token-to-revoke", &token).await;
        click(&client, "#revoke-token").await;
        text_containing(&client, "#revoke-result", "no longer admits anyone").await;
        assert_eq!(app.authorize(&token, None).await["reason"], "revoked");
    })
    .await;
}

/// Every CSP violation the page has met since it loaded (the Reporting API buffers them), as
/// `"<directive> <blocked URL>"`.
const CSP_VIOLATIONS: &str = r#"
return new Promise((resolve) => {
  const seen = [];
  const take = (reports) => reports.forEach((r) =>
    seen.push(`${r.body.effectiveDirective} ${r.body.blockedURL || ''}`));
  const observer = new ReportingObserver(take, { types: ['csp-violation'], buffered: true });
  observer.observe();
  setTimeout(() => { take(observer.takeRecords()); resolve(seen); }, 1000);
});
"#;

#[tokio::test]
async fn the_docs_render_under_their_own_csp_without_a_violation() {
    let app = spawn_app().await;
    with_browser(|client| async move {
        client
            .goto(&app.url("/docs/"))
            .await
            .expect("open the docs");
        text_containing(&client, ".swagger-ui .info .title", "Vouch").await;
        // Open an operation and try it: more of the UI renders, and it calls this origin.
        click(&client, ".opblock-summary").await;
        click(&client, ".try-out__btn").await;
        click(&client, ".execute").await;
        element(&client, ".responses-wrapper .live-responses-table").await;
        let violations = js(&client, CSP_VIOLATIONS).await;
        assert_eq!(
            violations,
            json!([]),
            "the docs' CSP blocked some of their own assets"
        );
        // The policy is in force (not merely absent): an inline script is refused.
        let inline = js(
            &client,
            "const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; \
             document.body.appendChild(s); return window.__ran === 1;",
        )
        .await;
        assert_eq!(inline, json!(false));
    })
    .await;
}

#[tokio::test]
async fn admins_manage_webhook_endpoints() {
    let app = helpers::spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
    })
    .await;

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.admin_key).await;
        click(&client, "#nav a[href='#/webhooks']").await;
        fill(&client, "#webhook-url", "http://127.0.0.1:9/hook").await;
        fill(&client, "#webhook-description", "eu meeting servers").await;
        click(&client, "#type-entitlement-revoked").await;
        click(&client, "form.filters button[type=submit]").await;
        text_containing(&client, "#shown-secret", "shown this once").await;
        let secret = element(&client, "#new-secret")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(secret.starts_with("whsec_"), "{secret}");
        screenshot(&client, "admin-webhooks").await;
        let list = api_json(&app, "/v1/admin/webhooks", &app.admin_key).await;
        let id = list["items"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(list["items"][0]["events"], json!(["entitlement.revoked"]));

        // The endpoint's page: a test ping shows up among its deliveries.
        click(&client, "main table a").await;
        text_containing(&client, "main .facts", "http://127.0.0.1:9/hook").await;
        click(&client, "#webhook-test").await;
        text_containing(&client, "main .notice", "queued").await;
        text_containing(&client, "main table", "ping").await;

        // Rotation shows the new secret once.
        click(&client, "#webhook-rotate").await;
        text_containing(&client, "#shown-secret", "24 hours").await;
        let rotated = element(&client, "#new-secret")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(rotated, secret);

        // Deleting takes a second click.
        click(&client, "#webhook-delete").await;
        click(&client, "#webhook-delete").await;
        text_containing(&client, "main .notice", "deleted").await;
        assert_eq!(
            app.get(&format!("/v1/admin/webhooks/{id}"), &app.admin_key)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

/// Poll the API's overview until `ready` accepts it (deliveries settle in the background).
async fn overview_when(app: &TestApp, ready: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let o = api_json(app, "/v1/overview", &app.admin_key).await;
        if ready(&o) {
            return o;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the overview never settled: {o}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The rows of the table at `css`, as cell texts.
async fn rows(client: &Client, css: &str) -> Value {
    js(
        client,
        &format!(
            "return [...document.querySelectorAll('{css} tbody tr')]\
             .map(r => [...r.cells].map(c => c.textContent.trim()))"
        ),
    )
    .await
}

#[tokio::test]
async fn admins_and_reviewers_land_on_the_overview_of_what_needs_attention() {
    let app = helpers::spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_networks = true;
        s.webhooks.poll_interval_millis = 100;
        // Nobody listens on port 9: the email is given up after its one attempt.
        s.email.smtp_url = Some(secrecy::SecretString::from("smtp://127.0.0.1:9"));
        s.delivery.max_attempts = 1;
        s.delivery.poll_interval_millis = 100;
    })
    .await;
    // A pending request, and an approval that ends in 12 days.
    let waiting = account(&app, "overview-waiting").await;
    submit(&app, &app.backend_key, &waiting, "nonprofit").await;
    let approved = account(&app, "overview-approved").await;
    let ending = submit(&app, &app.backend_key, &approved, "nonprofit").await;
    let res = app
        .post(
            &format!("/v1/exceptions/{ending}/decision"),
            &app.reviewer_key,
            &json!({"decision": "approve", "reason": "known shelter",
                "expires_at": app.now() + chrono::Duration::days(12)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A code that cannot be sent, and an endpoint nobody answers.
    let res = app
        .post(
            &format!("/v1/accounts/{waiting}/verifications"),
            &app.backend_key,
            &json!({"channel": "email", "to": "ann@example.org"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hook: Value = app
        .post(
            "/v1/admin/webhooks",
            &app.admin_key,
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let res = app
        .post(
            &format!("/v1/admin/webhooks/{hook_id}/test"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let expected = overview_when(&app, |o| {
        o["verifications_today"]["email"]["failed"] == 1 && o["failing_webhooks"]["count"] == 1
    })
    .await;
    let kid = expected["signing_key"]["kid"].as_str().unwrap().to_owned();

    with_browser(move |client| async move {
        sign_in(&client, &app, &app.admin_key).await;
        text_containing(&client, "main h1", "Overview").await;
        let nav = text_containing(&client, "#nav", "Overview").await;
        assert!(nav.starts_with("Overview"), "{nav}");
        // At a glance: one pending, one approval ending, one failed code, one failing endpoint.
        for (tile, text) in [
            ("#glance-pending", "1\npending review"),
            ("#glance-approvals", "1\napprovals ending within 30 days"),
            ("#glance-failed", "1\ncodes failed today"),
            ("#glance-sms", "0 / 1000"),
            ("#glance-webhooks", "1\nwebhook endpoints failing"),
            ("#glance-key", "next key rotation"),
        ] {
            text_containing(&client, tile, text).await;
        }
        text_containing(&client, "#overview-pending-total", "1").await;
        let pending = rows(&client, "#overview-pending").await;
        assert_eq!(
            pending,
            json!([["Less than 1 day", "1"], ["1 to 3 days", "0"], ["3 to 7 days", "0"], ["More than 7 days", "0"]])
        );
        text_containing(&client, "#overview-approvals-count", "1").await;
        let approvals = rows(&client, "#overview-approvals").await;
        assert_eq!(approvals[0][0], ending.as_str());
        assert!(
            approvals[0][2].as_str().unwrap().starts_with("11 days")
                || approvals[0][2].as_str().unwrap().starts_with("12 days"),
            "{approvals}"
        );
        assert_eq!(
            rows(&client, "#overview-sends-table").await,
            json!([["Email", "1", "0", "1", "0"], ["SMS", "0", "0", "0", "0"]])
        );
        text_containing(&client, "#overview-sms-budget", "0 of 1000 SMS in the last hour").await;
        let hooks = rows(&client, "#overview-webhooks").await;
        assert_eq!(hooks[0][0], "127.0.0.1:9", "{hooks}");
        assert_eq!(hooks[0][1], "enabled", "{hooks}");
        assert_eq!(hooks[0][2], "1", "{hooks}");
        text_containing(&client, "#overview-key", &kid).await;
        // Every table says what it holds.
        assert_eq!(
            js(&client, "return [...document.querySelectorAll('main table')].every(t => t.caption && t.caption.textContent.trim().length > 0)").await,
            Value::Bool(true)
        );
        let shot = screenshot(&client, "admin-overview").await;
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );

        // Each item leads to where it is acted on.
        client
            .find(Locator::LinkText(&ending))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        text_containing(&client, "main h1", &ending).await;
        client.back().await.unwrap();
        click(&client, "#overview-webhooks a[href^='#/webhooks/']").await;
        text_containing(&client, "main h1", "Webhook endpoint").await;
        client.back().await.unwrap();
        click(&client, "#overview-approvals a[href*='expiring_within_days']").await;
        text_containing(&client, "#queue-ending", "end within 30 days").await;
        text_containing(&client, "main table", &ending).await;
        click(&client, "#nav a[href='#/overview']").await;
        click(&client, "#overview-pending a[href='#/queue']").await;
        text_containing(&client, "#pending-count", "1 request pending review").await;

        // A reviewer lands on the overview too, without the admin-only links.
        click(&client, "#sign-out").await;
        sign_in(&client, &app, &app.reviewer_key).await;
        text_containing(&client, "#who-role", "reviewer").await;
        text_containing(&client, "main h1", "Overview").await;
        text_containing(&client, "#overview-webhooks", "127.0.0.1:9").await;
        text_containing(&client, "#glance-webhooks", "webhook endpoints failing").await;
        let links = js(&client, "return document.querySelectorAll(\"main a[href^='#/webhooks'], main a[href='#/keys']\").length").await;
        assert_eq!(links, Value::from(0));
        screenshot(&client, "reviewer-overview").await;
    })
    .await;
}
