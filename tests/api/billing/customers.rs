//! Linking Stripe customers to accounts: events for a customer not yet linked wait for the
//! link, a customer belongs to one account, and moving an account to another customer
//! withdraws what the old one paid for.

use super::*;

/// `PUT /v1/accounts/{account}/billing` as the backend.
async fn link(app: &TestApp, account: &str, customer: &str) -> Response {
    app.request(
        reqwest::Method::PUT,
        &format!("/v1/accounts/{account}/billing"),
        Some(&app.backend_key),
        Some(&json!({"customer_id": customer})),
    )
    .await
}

/// A subscription of a customer no account is linked to yet, created, paid and active
/// (asserting that each event waits).
async fn unlinked_active_subscription(app: &TestApp) -> Sub {
    let t = now(app);
    let sub = Sub::new(None, t - 600);
    let created = event(
        "customer.subscription.created",
        t - 600,
        sub.object("incomplete", t + 86_400 * 30),
    );
    let paid = event_with(
        &stripe_id("evt"),
        "invoice.paid",
        t - 590,
        ACACIA,
        sub.invoice(true, "subscription_create", t + 86_400 * 30, false),
        None,
    );
    let active = event(
        "customer.subscription.updated",
        t - 590,
        sub.object("active", t + 86_400 * 30),
    );
    for payload in [&created, &paid, &active] {
        assert_eq!(deliver(app, payload).await, "pending");
    }
    sub
}

#[tokio::test]
async fn events_for_an_unknown_customer_wait_for_the_link() {
    let app = billing_app().await;
    let acc = app.account("linked-later").await;
    let sub = unlinked_active_subscription(&app).await;
    assert!(payment_evidence(&app, &acc).await.is_empty());
    let unlinked: Value = app
        .get(&format!("/v1/accounts/{acc}/billing"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unlinked["customer_id"], Value::Null);

    // The link appears: the waiting events are applied in the same request.
    let res = link(&app, &acc, &sub.customer).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["customer_id"], sub.customer.as_str());
    assert_eq!(body["subscriptions_applied"], json!([sub.id]));
    let evidence = payment_evidence(&app, &acc).await;
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["status"], "active");
    assert_eq!(evidence[0]["source"], format!("stripe:{}", sub.id));
    assert!(granted(&app, &acc).await);
    let linked = audit(&app, "action=billing.customer_linked").await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["actor"], "test-backend");
}

#[tokio::test]
async fn customer_ids_are_checked_and_the_account_must_exist() {
    let app = billing_app().await;
    let acc = app.account("bad-links").await;
    for bad in ["", "sub_123", "cus_", "cus_ünïcode", "cus_a b"] {
        assert_problem(link(&app, &acc, bad).await, 400, "invalid_customer_id").await;
    }
    let res = link(
        &app,
        "acc_0000000000000000000000000000dead",
        &stripe_id("cus"),
    )
    .await;
    assert_problem(res, 404, "account_not_found").await;
}

#[tokio::test]
async fn a_customer_belongs_to_one_account_and_its_later_events_apply_directly() {
    let app = billing_app().await;
    let acc = app.account("linked").await;
    let sub = unlinked_active_subscription(&app).await;
    assert_eq!(
        link(&app, &acc, &sub.customer).await.status(),
        StatusCode::CREATED
    );

    // Again: nothing changes. Another account cannot take the customer.
    assert_eq!(
        link(&app, &acc, &sub.customer).await.status(),
        StatusCode::OK
    );
    let other = app.account("someone-else").await;
    assert_problem(
        link(&app, &other, &sub.customer).await,
        409,
        "customer_linked",
    )
    .await;

    // Later events of the customer apply directly.
    let t = now(&app);
    let deleted = event(
        "customer.subscription.deleted",
        t - 10,
        sub.object("canceled", t + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &deleted).await, "applied");
    assert!(!granted(&app, &acc).await);
}

#[tokio::test]
async fn moving_an_account_to_another_customer_withdraws_the_old_payment() {
    let app = billing_app().await;
    let acc = app.account("switcher").await;
    let t = now(&app);
    let sub = Sub::new(None, t - 60);
    let created = event(
        "customer.subscription.created",
        t - 60,
        sub.object("active", t + 86_400),
    );
    assert_eq!(deliver(&app, &created).await, "pending");
    assert_eq!(
        link(&app, &acc, &sub.customer).await.status(),
        StatusCode::CREATED
    );
    assert!(granted(&app, &acc).await);

    assert_eq!(
        link(&app, &acc, "cus_Replacement0001").await.status(),
        StatusCode::CREATED
    );
    assert!(!granted(&app, &acc).await);
    let current: Value = app
        .get(&format!("/v1/accounts/{acc}/billing"), &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["customer_id"], "cus_Replacement0001");
}
