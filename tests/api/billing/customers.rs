//! Events for a Stripe customer not yet linked to an account wait for the link.

use super::*;

#[tokio::test]
async fn events_for_an_unknown_customer_wait_for_the_link() {
    let app = billing_app().await;
    let acc = app.account("linked-later").await;
    let t = now(&app);
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
        assert_eq!(deliver(&app, payload).await, "pending");
    }
    assert!(payment_evidence(&app, &acc).await.is_empty());
    let link: Value = app
        .get(&format!("/v1/accounts/{acc}/billing"), &app.reviewer_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(link["customer_id"], Value::Null);

    let path = format!("/v1/accounts/{acc}/billing");
    for bad in ["", "sub_123", "cus_", "cus_ünïcode", "cus_a b"] {
        let res = app
            .request(
                reqwest::Method::PUT,
                &path,
                Some(&app.backend_key),
                Some(&json!({"customer_id": bad})),
            )
            .await;
        assert_problem(res, 400, "invalid_customer_id").await;
    }
    let res = app
        .request(
            reqwest::Method::PUT,
            "/v1/accounts/acc_0000000000000000000000000000dead/billing",
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_problem(res, 404, "account_not_found").await;

    // The link appears: the waiting events are applied in the same request.
    let res = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
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

    // Again: nothing changes. Another account cannot take the customer.
    let res = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = app.account("someone-else").await;
    let res = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/accounts/{other}/billing"),
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub.customer})),
        )
        .await;
    assert_problem(res, 409, "customer_linked").await;

    // Later events of the customer apply directly.
    let deleted = event(
        "customer.subscription.deleted",
        t - 10,
        sub.object("canceled", t + 86_400 * 30),
    );
    assert_eq!(deliver(&app, &deleted).await, "applied");
    assert!(!granted(&app, &acc).await);

    // Moving the account to another customer withdraws what the old customer's
    // subscriptions gave it.
    let acc2 = app.account("switcher").await;
    let sub2 = Sub::new(None, t - 60);
    assert_eq!(
        deliver(
            &app,
            &event(
                "customer.subscription.created",
                t - 60,
                sub2.object("active", t + 86_400)
            )
        )
        .await,
        "pending"
    );
    let path2 = format!("/v1/accounts/{acc2}/billing");
    let res = app
        .request(
            reqwest::Method::PUT,
            &path2,
            Some(&app.backend_key),
            Some(&json!({"customer_id": sub2.customer})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(granted(&app, &acc2).await);
    let res = app
        .request(
            reqwest::Method::PUT,
            &path2,
            Some(&app.backend_key),
            Some(&json!({"customer_id": "cus_Replacement0001"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(!granted(&app, &acc2).await);
    let link: Value = app
        .get(&path2, &app.backend_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(link["customer_id"], "cus_Replacement0001");
}
