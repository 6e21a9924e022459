//! Who read what: every reveal of a request's sealed text, listed for admins from the audit
//! log, and counted per reviewing client for an alert on one key reading many statements.

use super::*;

async fn reveals_total(app: &TestApp, reviewer: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("vouch_exception_reveals_total{{reviewer=\"{reviewer}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn admins_see_who_revealed_a_statement_and_when() {
    let app = spawn_app().await;
    let acc = app.account("revealed").await;
    let eid = submit(&app, &acc, "dissident").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = submit(&app, &app.account("not-revealed").await, "nonprofit").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/exceptions/{eid}/reveals");

    // Nothing revealed yet; reading without opening is not a reveal.
    let none = json_of(app.get(&path, &app.admin_key).await).await;
    assert_eq!(none["items"], json!([]));
    json_of(
        app.get(
            &format!("/v1/exceptions/{eid}?sealed=false"),
            &app.reviewer_key,
        )
        .await,
    )
    .await;
    assert_eq!(reveals_total(&app, "test-reviewer").await, 0);

    for _ in 0..3 {
        json_of(
            app.get(&format!("/v1/exceptions/{eid}"), &app.reviewer_key)
                .await,
        )
        .await;
        app.clock.advance(Duration::minutes(1));
    }
    json_of(
        app.get(&format!("/v1/exceptions/{eid}"), &app.admin_key)
            .await,
    )
    .await;
    json_of(
        app.get(&format!("/v1/exceptions/{other}"), &app.reviewer_key)
            .await,
    )
    .await;

    // Newest first, paginated, only this request's reveals.
    let first = json_of(app.get(&format!("{path}?limit=2"), &app.admin_key).await).await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["reviewer"], "test-admin");
    assert_eq!(items[1]["reviewer"], "test-reviewer");
    assert!(time(&items[0]["at"]) > time(&items[1]["at"]));
    assert_eq!(
        items[1]["fields"],
        json!(["statement", "organization", "reference"])
    );
    assert!(items[1]["principal"].is_string());
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = json_of(
        app.get(&format!("{path}?limit=2&cursor={cursor}"), &app.admin_key)
            .await,
    )
    .await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|r| r["reviewer"] == "test-reviewer"));

    // Admins only; an unknown request is a 404.
    for key in [&app.reviewer_key, &app.backend_key] {
        assert_problem(app.get(&path, key).await, 403, "forbidden").await;
    }
    assert_problem(
        app.get("/v1/exceptions/exc_unknown/reveals", &app.admin_key)
            .await,
        404,
        "exception_not_found",
    )
    .await;

    // The metric counts reveals per reviewing client: four by the reviewer, one by the admin.
    assert_eq!(reveals_total(&app, "test-reviewer").await, 4);
    assert_eq!(reveals_total(&app, "test-admin").await, 1);

    // The reveals outlive the request: erasure keeps the audit log.
    let res = app
        .delete(&format!("/v1/accounts/{acc}"), &app.backend_key)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let after = json_of(app.get(&path, &app.admin_key).await).await;
    assert_eq!(after["items"].as_array().unwrap().len(), 4);
}
