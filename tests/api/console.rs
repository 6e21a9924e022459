//! The admin console's static files: served without a key, with strict security headers, kept
//! out of the API spec; and `GET /v1/me`, which its sign-in uses. (Browser tests: tests/browser.)

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use vouch::domain::role::Role;

use crate::helpers::{assert_problem, spawn_app};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn assert_hardened(res: &Response) {
    let h = res.headers();
    let path = res.url().path().to_owned();
    assert_eq!(h["content-security-policy"], CSP, "{path}");
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    assert!(h.get("set-cookie").is_none(), "{path}");
}

#[tokio::test]
async fn the_console_is_served_without_a_key_with_strict_headers() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/admin/");
    assert_hardened(&res);

    let res = app.client.get(app.url("/admin/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hardened(&res);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert!(res.headers()["x-request-id"].to_str().is_ok());
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="app.js"></script>"#));
    // No inline script or style, nothing from another origin.
    assert!(!html.contains("<style") && !html.contains("style=\""));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    assert_eq!(
        app.client
            .get(app.url("/admin/index.html"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        html
    );

    for (file, ctype) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("exception.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/admin/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        assert_hardened(&res);
        assert_eq!(res.headers()["content-type"], ctype, "{file}");
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        let body = res.bytes().await.unwrap();
        assert!(!body.is_empty());
        // Revalidation is cheap: same ETag, 304 without a body.
        let again = app
            .client
            .get(app.url(&format!("/admin/{file}")))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{file}");
        assert_hardened(&again);
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // HEAD answers like GET, without the body.
    let res = app
        .client
        .head(app.url("/admin/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_hardened(&res);
}

#[tokio::test]
async fn unknown_console_files_and_methods_are_problems() {
    let app = spawn_app().await;
    for path in [
        "/admin/nope.js",
        "/admin/../Cargo.toml",
        "/admin/%2e%2e/Cargo.toml",
        "/admin/assets/app.js",
        "/admin/index.html/",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        if res.status() == StatusCode::NOT_FOUND && res.url().path().starts_with("/admin/") {
            assert_hardened(&res);
        }
        assert_problem(res, 404, "not_found").await;
    }
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let res = app.request(method.clone(), "/admin/", None, None).await;
        assert_hardened(&res);
        assert_eq!(res.headers()["allow"], "GET, HEAD");
        assert_problem(res, 405, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn the_console_is_not_in_the_api_spec_and_the_api_still_needs_a_key() {
    let app = spawn_app().await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| !p.starts_with("/admin")), "{paths:?}");
    assert!(paths.contains_key("/v1/me"));

    // Loading the console grants nothing: every call it makes needs the person's key.
    let page = app.client.get(app.url("/admin/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    for path in [
        "/v1/me",
        "/v1/exceptions",
        "/v1/accounts",
        "/v1/admin/audit",
    ] {
        let res = app
            .client
            .get(app.url(path))
            .header("referer", app.url("/admin/"))
            .header("origin", &app.address)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "missing_credentials").await;
    }
}

#[tokio::test]
async fn me_names_the_client_behind_the_key() {
    let app = spawn_app().await;
    for role in [Role::Admin, Role::Backend, Role::Reviewer, Role::Meeting] {
        let res = app.get("/v1/me", app.key(role)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let me: Value = res.json().await.unwrap();
        assert_eq!(me["name"], format!("test-{}", role.as_str()));
        assert_eq!(me["role"], role.as_str());
        assert!(
            me["client_id"].as_str().unwrap().starts_with("cli_"),
            "{me}"
        );
        // The principal defaults to the client's name.
        assert_eq!(me["principal"], me["name"], "{me}");
        assert_eq!(me.as_object().unwrap().len(), 4, "{me}");
    }
    assert_problem(
        app.get("/v1/me", "vk_not-a-real-key").await,
        401,
        "invalid_credentials",
    )
    .await;
}
