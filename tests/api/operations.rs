use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");

    app.create_account("metric-1").await;
    app.get(
        "/v1/accounts/acc_0000000000000000000000000000dead",
        &app.backend_key,
    )
    .await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"vouch_http_requests_total{method="POST",route="/v1/accounts",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"vouch_http_requests_total{method="GET",route="/v1/accounts/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("vouch_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        !text.contains("acc_0000000000000000000000000000dead"),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn the_spec_and_offline_docs_are_served() {
    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let built: Value = serde_json::from_str(&vouch::openapi::spec_json()).unwrap();
    assert_eq!(served, built);
    assert_eq!(served["info"]["title"], "Vouch");

    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/docs/");
    let html = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Every asset the page loads is served by us (no CDN).
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(
            html.contains(asset) || asset == "swagger-initializer.js",
            "{asset}"
        );
        let res = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{asset}");
    }
    assert!(
        !html.contains("https://"),
        "the docs page loads nothing from the internet"
    );
}

/// The committed spec is generated from code; `UPDATE_OPENAPI=1 cargo test` rewrites it.
#[test]
fn committed_openapi_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let generated = vouch::openapi::spec_json();
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test committed_openapi` and commit it"
    );
}

#[test]
fn every_operation_documents_its_errors_and_security() {
    let spec: Value = serde_json::from_str(&vouch::openapi::spec_json()).unwrap();
    assert!(spec["components"]["securitySchemes"]["api_key"].is_object());
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|c| c.starts_with('2') || c.starts_with('3')),
                "{method} {path}"
            );
            if op["security"].is_array() {
                for code in ["401", "403"] {
                    let r = &responses[code];
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{method} {path} {code}"
                    );
                }
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "413"] {
                    assert!(responses.contains_key(code), "{method} {path} {code}");
                }
                let json_extractor = op["security"].is_array();
                assert_eq!(
                    responses.contains_key("415"),
                    json_extractor,
                    "{method} {path} 415"
                );
            }
            assert!(
                op["operationId"].is_string() && op["tags"].is_array(),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_docs_carry_a_csp_that_their_own_assets_satisfy_and_cannot_be_framed() {
    let app = spawn_app().await;
    let mut pages = vec!["/docs".to_owned(), "/docs/".to_owned()];
    let html = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Everything the page loads is a file of its own, under /docs/: no inline script, no
    // <style> element, nothing from another origin.
    assert!(!html.contains("<style"), "{html}");
    for part in html.split("<script").skip(1) {
        let tag = part.split('>').next().unwrap();
        let src = tag.split("src=\"").nth(1).expect("no inline script");
        let src = src.split('"').next().unwrap();
        assert!(src.starts_with("./") && !src.contains(':'), "{src}");
        pages.push(format!("/docs/{}", &src[2..]));
    }
    for part in html.split("href=\"").skip(1) {
        let href = part.split('"').next().unwrap();
        assert!(!href.contains(':'), "{href}");
        pages.push(format!("/docs/{}", href.trim_start_matches("./")));
    }
    pages.push("/docs/no-such-file.js".to_owned());
    for page in &pages {
        let res = app.client.get(app.url(page)).send().await.unwrap();
        assert!(res.status().as_u16() < 500, "{page}");
        let headers = res.headers();
        assert_eq!(
            headers["content-security-policy"],
            vouch::docs::CONTENT_SECURITY_POLICY,
            "{page}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{page}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{page}");
    }
    let csp = vouch::docs::CONTENT_SECURITY_POLICY;
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive}");
    }
    assert!(!csp.contains("unsafe-eval"));
    // The initializer evaluates nothing.
    let init = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!init.contains("eval(") && !init.contains("new Function"));
    // The API itself is not given the docs' policy.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(res.headers().get("content-security-policy").is_none());
}

#[tokio::test]
async fn the_docs_can_be_switched_off_and_the_spec_stays() {
    let app = crate::helpers::spawn_app_with(|s| s.docs.enabled = false).await;
    for page in ["/docs", "/docs/", "/docs/swagger-ui-bundle.js"] {
        let res = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{page}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{page}"
        );
    }
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let built: Value = serde_json::from_str(&vouch::openapi::spec_json()).unwrap();
    assert_eq!(served, built);
}
