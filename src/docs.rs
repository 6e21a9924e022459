//! `/docs`: Swagger UI from the binary's own bundled copy, under a Content-Security-Policy that
//! those bundled files satisfy and that keeps it from being framed, or switched off entirely
//! (`docs.enabled`). It shares an origin with the admin console, where a reviewer's key sits in
//! `sessionStorage`, so it must not be a way into that origin.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpResponse,
};
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// Scripts come from `/docs/` only (no inline script, no eval). Swagger UI inserts `<style>`
/// elements and its stylesheet draws icons as `data:` SVGs, so those two are allowed (a real
/// browser test, `tests/browser`, checks that the page meets no other violation); "Try it out"
/// calls this origin only. Nothing may frame it, and it submits no form anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Register `/docs` (a redirect), Swagger UI under `/docs/`, and `/openapi.json`; without docs,
/// only `/openapi.json` (`/docs` then falls through to the 404 problem).
pub fn configure(cfg: &mut web::ServiceConfig, spec: OpenApi, enabled: bool) {
    if enabled {
        cfg.route("/docs", web::get().to(redirect))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec));
    } else {
        let spec = web::Data::new(spec);
        cfg.service(
            web::resource("/openapi.json")
                .app_data(spec)
                .route(web::get().to(openapi_json)),
        );
    }
}

async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}

async fn openapi_json(spec: web::Data<OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(spec.get_ref())
}

fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// Middleware: the security headers on every `/docs` response (errors and redirects too).
pub async fn harden(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let docs = is_docs(req.path());
    let mut res = next.call(req).await?;
    if docs {
        let headers = res.headers_mut();
        for (name, value) in [
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_docs_paths_are_docs() {
        assert!(is_docs("/docs"));
        assert!(is_docs("/docs/index.html"));
        assert!(!is_docs("/docsx"));
        assert!(!is_docs("/admin/"));
        assert!(!is_docs("/openapi.json"));
    }
}
