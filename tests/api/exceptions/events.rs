//! What meeting servers hear of an exception: its approval grants, its revocation withdraws
//! (`exception_revoked`), and neither says which kind of exception it was.

use super::*;
use crate::decisions::{deliver_locally, wait_listed, Listener};

#[tokio::test]
async fn an_exceptions_approval_and_revocation_are_announced_without_its_category() {
    let app = spawn_app_with(deliver_locally).await;
    let sibling = app.spawn_sibling().await;
    let listener = Listener::attach(&app).await;
    let acc = app.account("exception-events").await;
    let eid = submit(&app, &acc, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decided(&app, &app.reviewer_key, &eid, approve("registered charity")).await;
    let granted = listener
        .wait("entitlement.granted", "account_id", &acc)
        .await;
    assert_eq!(granted["reason"], "exception");
    let token = app.issue_token(&acc).await;
    wait_listed(&sibling, &token, 0).await;

    let res = app
        .post(
            &format!("/v1/exceptions/{eid}/revoke"),
            &app.reviewer_key,
            &json!({"reason": "dissolved"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let revoked = listener
        .wait("entitlement.revoked", "account_id", &acc)
        .await;
    assert_eq!(revoked["reason"], "exception_revoked");
    wait_listed(&sibling, &token, 1).await;

    let bodies = serde_json::to_string(&listener.events()).unwrap();
    assert!(!bodies.contains("nonprofit"), "{bodies}");
    assert!(!bodies.contains("dissident"), "{bodies}");
    assert!(!bodies.contains(ORGANIZATION), "{bodies}");
}
