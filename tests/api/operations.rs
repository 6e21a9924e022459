use serde_json::Value;
use vouch::domain::role::Role;

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

/// Every operation says who may call it (`x-vouch-roles`, and a `Roles:` line for readers),
/// describes every response, and shows what a call looks like: an example of each request body
/// and of each success body. Routes added later cannot skip any of it. (scripts/spec-check
/// validates the examples against their schemas.)
#[test]
fn every_operation_names_its_roles_describes_its_responses_and_has_examples() {
    let spec: Value = serde_json::from_str(&vouch::openapi::spec_json()).unwrap();
    let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let has_example = |content: &Value| {
        content.get("example").is_some()
            || content["examples"]
                .as_object()
                .is_some_and(|e| !e.is_empty())
    };
    let mut gaps = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            match op["x-vouch-roles"].as_array() {
                None => gaps.push(format!("{at}: no x-vouch-roles")),
                Some(roles) => {
                    let names: Vec<&str> = roles.iter().filter_map(Value::as_str).collect();
                    if names.len() != roles.len() || names.iter().any(|r| !known.contains(r)) {
                        gaps.push(format!("{at}: x-vouch-roles {roles:?} names no role"));
                    }
                    if !names.is_empty() && !names.contains(&"admin") {
                        gaps.push(format!(
                            "{at}: admins may do everything, but not by the spec"
                        ));
                    }
                    let line = if names.is_empty() {
                        "Roles: none".to_owned()
                    } else {
                        format!("Roles: {}.", names.join(", "))
                    };
                    if !op["description"]
                        .as_str()
                        .is_some_and(|d| d.contains(&line))
                    {
                        gaps.push(format!("{at}: the description lacks `{line}`"));
                    }
                }
            }
            if op["summary"].as_str().is_none_or(|s| s.trim().is_empty()) {
                gaps.push(format!("{at}: no summary (the handler's doc comment)"));
            }
            for (media, content) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if !has_example(content) {
                    gaps.push(format!("{at}: request {media} has no example"));
                }
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if response["description"]
                    .as_str()
                    .is_none_or(|d| d.trim().is_empty())
                {
                    gaps.push(format!("{at} {status}: no description"));
                }
                if !status.starts_with('2') {
                    continue;
                }
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    if !has_example(content) {
                        gaps.push(format!("{at} {status} {media}: no example"));
                    }
                }
            }
        }
    }
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

/// Made-up methods and paths must not grow `/metrics`: every label comes from a closed set
/// (standard methods + `OTHER`, registered routes + `unmatched`, the status).
#[tokio::test]
async fn junk_methods_and_paths_cannot_grow_metrics() {
    use reqwest::Method;

    let app = spawn_app().await;
    let mut requests = Vec::new();
    for i in 0..150 {
        // 1 KB method names, each different, at unknown and at known paths.
        let method = Method::from_bytes(format!("X{i:04}{}", "J".repeat(1019)).as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            format!("/junk/{i}/{}", uuid::Uuid::new_v4())
        } else {
            "/v1/accounts".to_owned()
        };
        requests.push((method, path));
    }
    for (i, method) in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS]
        .into_iter()
        .enumerate()
    {
        for j in 0..25 {
            requests.push((
                method.clone(),
                format!("/v{i}/{j}/{}", uuid::Uuid::new_v4()),
            ));
        }
    }
    for chunk in requests.chunks(25) {
        let sends = chunk.iter().map(|(method, path)| {
            app.client
                .request(method.clone(), app.url(path))
                .bearer_auth(&app.backend_key)
                .send()
        });
        for res in futures_util::future::join_all(sends).await {
            let status = res.unwrap().status().as_u16();
            assert!((400..500).contains(&status), "junk answered {status}");
        }
    }

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("vouch_http_requests_total{"))
        .collect();
    // 250 distinct junk requests land in six series: each method label on `unmatched` (404)
    // and OTHER on /v1/accounts (405). Before labels were closed: one series per junk method.
    assert!(
        series.len() <= 12,
        "{} series:\n{}",
        series.len(),
        series.join("\n")
    );
    assert!(text.len() <= 32 * 1024, "/metrics is {} bytes", text.len());
    assert!(!text.contains("JJJJ") && !text.contains("/junk/"), "{text}");
    assert!(
        text.contains(r#"vouch_http_requests_total{method="OTHER",route="unmatched",status="#),
        "{text}"
    );
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
