//! The admin console: a small web app for reviewers, moderators and admins, embedded in the
//! binary and served at `/admin/`. It is static files only; everything it shows comes from the
//! public API, called by the browser with the person's own API key. Not part of the API (nor its
//! spec).

use crate::error::ErrorCode;
use std::sync::LazyLock;

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse, ResponseError,
};

use crate::{crypto, error::ApiError};

/// No inline script or style, nothing from another origin, no framing, no forms posted
/// anywhere: the console's own files and `fetch` to this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("signin.js", JS),
    asset!("overview.js", JS),
    asset!("queue.js", JS),
    asset!("exception.js", JS),
    asset!("accounts.js", JS),
    asset!("audit.js", JS),
    asset!("admin.js", JS),
    asset!("webhooks.js", JS),
    asset!("tokens.js", JS),
];

/// Strong validators, so browsers revalidate cheaply and pick up a new release at once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{}\"", &crypto::hex(&crypto::sha256(a.body))[..32]))
        .collect()
});

/// Register `/admin` (a redirect) and `/admin/{file}` on the actix app, outside the API spec.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin")
            .route(web::get().to(redirect))
            .route(web::head().to(redirect))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/admin/{file:.*}")
            .route(web::get().to(file))
            .route(web::head().to(file))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Headers on every console response, errors included.
fn harden(mut res: HttpResponse) -> HttpResponse {
    let headers = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    res
}

async fn redirect() -> HttpResponse {
    harden(
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, "/admin/"))
            .finish(),
    )
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed here; allowed: GET, HEAD", req.method()),
    )
    .error_response();
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    harden(res)
}

async fn file(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let name = match path.as_str() {
        "" => "index.html",
        other => other,
    };
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return harden(
            ApiError::not_found(ErrorCode::NotFound, "no such file in the admin console")
                .error_response(),
        );
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut builder = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::ETAG, etag.as_str()))
        // Always revalidate: file names carry no version, and the ETag makes that cheap.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    builder.content_type(asset.content_type);
    // For HEAD, actix sends the headers (with this length) and drops the body.
    harden(if fresh {
        builder.finish()
    } else {
        builder.body(asset.body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_load_is_embedded() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.body);
            // Relative references in HTML (`src="x.js"`, `href="x.css"`) and JS (`from './x.js'`).
            for (open, close) in [("src=\"", '"'), ("href=\"", '"'), ("from './", '\'')] {
                for part in text.split(open).skip(1) {
                    let target = part.split(close).next().unwrap_or("");
                    if target.contains(':') || target.starts_with('#') || target.contains('$') {
                        continue;
                    }
                    assert!(
                        names.contains(&target),
                        "{} refers to {target}, which is not embedded",
                        asset.name
                    );
                }
            }
        }
    }

    #[test]
    fn scripts_never_write_html_or_evaluate_strings() {
        // API data reaches the page only as text nodes; the CSP would stop eval anyway.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = String::from_utf8_lossy(asset.body);
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                ".style.",
                "'style'",
                "localStorage",
                "document.cookie",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", asset.name);
            }
        }
    }

    #[test]
    fn no_inline_script_or_style() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = String::from_utf8_lossy(asset.body);
            assert!(!text.contains("<style"), "{}", asset.name);
            assert!(!text.contains("style=\""), "{}", asset.name);
            for part in text.split("<script").skip(1) {
                let tag = part.split('>').next().unwrap_or("");
                assert!(tag.contains("src="), "inline script in {}", asset.name);
            }
        }
    }
}
