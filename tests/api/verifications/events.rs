//! What meeting servers hear of a phone verification: the entitlement its approval grants, as a
//! signed event and in the status list, the moment the code is checked.

use super::*;
use crate::decisions::{deliver_locally, wait_listed, Listener};

#[tokio::test]
async fn a_verified_phone_is_announced_as_the_entitlement_it_grants() {
    let rig = rig_with(deliver_locally).await;
    let app = &rig.app;
    let sibling = app.spawn_sibling().await;
    let listener = Listener::attach(app).await;
    let acc = app.account("verifies-phone").await;
    let (vid, code) = rig.sms_code(&acc, "+14155550142").await;
    assert_eq!(rig.check_ok(&vid, &code).await["status"], "approved");
    let granted = listener
        .wait("entitlement.granted", "account_id", &acc)
        .await;
    assert_eq!(granted["reason"], "phone");
    let token = app.issue_token(&acc).await;
    wait_listed(&sibling, &token, 0).await;
    let bodies = serde_json::to_string(&listener.events()).unwrap();
    assert!(
        !bodies.contains("5550142"),
        "no phone number in events: {bodies}"
    );
}
