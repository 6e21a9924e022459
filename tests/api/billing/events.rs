//! What meeting servers hear of a subscription's life: the entitlement it grants and the one
//! its cancellation withdraws, as signed events and in the status list of a sibling instance.

use super::*;
use crate::decisions::{deliver_locally, wait_listed, Listener};

#[tokio::test]
async fn a_subscription_and_its_cancellation_are_announced_and_listed() {
    let app = spawn_app_with(|s| {
        s.stripe.webhook_secrets = vec![SecretString::from(SECRET)];
        deliver_locally(s);
    })
    .await;
    let sibling = app.spawn_sibling().await;
    let listener = Listener::attach(&app).await;
    let acc = app.account("subscriber").await;
    let t = now(&app);
    let sub = Sub::new(Some(&acc), t - 10);
    let created = event(
        "customer.subscription.created",
        t - 5,
        sub.object("active", t + 30 * 86_400),
    );
    assert_eq!(deliver(&app, &created).await, "applied");
    let granted = listener
        .wait("entitlement.granted", "account_id", &acc)
        .await;
    assert_eq!(granted["reason"], "payment");
    assert_eq!(granted["external_id"], "subscriber");
    let token = issue_token(&app, &acc, 600).await;
    wait_listed(&sibling, &token, 0).await;

    let deleted = event(
        "customer.subscription.deleted",
        t - 1,
        sub.object("canceled", t + 30 * 86_400),
    );
    assert_eq!(deliver(&app, &deleted).await, "applied");
    let revoked = listener
        .wait("entitlement.revoked", "account_id", &acc)
        .await;
    assert_eq!(revoked["reason"], "lapsed");
    wait_listed(&sibling, &token, 1).await;
    // A repeat of the same event changes nothing and says nothing.
    assert_eq!(deliver(&app, &deleted).await, "duplicate");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        listener.types_for(&acc),
        ["entitlement.granted", "entitlement.revoked"]
    );
}
