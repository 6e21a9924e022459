//! The OpenAPI document, generated from the route registration (`routes::configure`).

use actix_web::App;
use utoipa::{
    openapi::{
        extensions::Extensions,
        security::{Http, HttpAuthScheme, SecurityScheme},
        ContentBuilder, OpenApi as Spec, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi,
};
use utoipa_actix_web::AppExt;

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vouch",
        description = "Identity verification and E2EE entitlements: accounts, verification evidence, \
                       an explainable policy, and signed tokens that meeting servers check before \
                       they allow end-to-end encryption.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem)),
    modifiers(&Security, &ProblemResponses),
    tags(
        (name = "accounts", description = "Accounts of the platform's users"),
        (name = "evidence", description = "Verification evidence and the entitlement decision"),
        (name = "verifications", description = "One-time codes by email and SMS that prove an address or number"),
        (name = "tokens", description = "E2EE entitlement tokens, the authorize check, revocation and the JWKS"),
        (name = "billing", description = "Stripe webhooks and the account's billing link"),
        (name = "exceptions", description = "Nonprofit and dissident exceptions: submission, four-eyes review, revocation"),
        (name = "admin", description = "API clients, keys and the audit log"),
        (name = "webhooks", description = "Signed entitlement events (Standard Webhooks) to meeting servers"),
        (name = "meeting servers", description = "Adapters for meeting servers: Vouch tokens exchanged for their own tokens, and the keys they verify them with"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Spec) {
        if let Some(components) = openapi.components.as_mut() {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(
                "An API key (`vk_...`) created with `vouch clients create` or by an admin.".into(),
            );
            components.add_security_scheme("api_key", SecurityScheme::Http(http));
        }
    }
}

/// Every operation documents the problem responses it can produce, beyond those it names; and
/// every error response, named or not, carries the problem body, so a handler's annotation
/// names only the status and the codes: `(status = 404, description = "`account_not_found`")`.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut Spec) {
        let content = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build()
        };
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(crate::error::PROBLEM_JSON, content())
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response) {
                        if response.content.is_empty() {
                            let media_type = crate::error::PROBLEM_JSON.to_owned();
                            response.content.insert(media_type, content().into());
                        }
                    }
                }
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = op.request_body.is_some();
                let forbidden = match roles(&op.extensions) {
                    Some(roles) if !roles.is_empty() => {
                        format!("`forbidden`: only {} may do this", roles.join(", "))
                    }
                    _ => "`forbidden`: the client's role may not do this".to_owned(),
                };
                let responses = &mut op.responses.responses;
                let mut add = |code: &str, description: &str| {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                if has_body {
                    add("400", "`malformed_json` or `invalid_body`: the body is not valid JSON of the expected shape");
                    add("413", "`payload_too_large`: the body is over the limit");
                    // Authenticated routes read bodies through the JSON extractor; the public
                    // webhook reads raw bytes and checks a signature instead.
                    if secured {
                        add(
                            "415",
                            "`unsupported_media_type`: the body is not application/json",
                        );
                    }
                } else if !op.parameters.as_ref().is_none_or(|p| p.is_empty()) {
                    add(
                        "400",
                        "`invalid_query`, `invalid_limit` or `invalid_cursor`",
                    );
                }
                if secured {
                    add("401", "`missing_credentials` or `invalid_credentials`");
                    add("403", &forbidden);
                }
                if path != "/healthz" && path != "/metrics" {
                    add(
                        "503",
                        "`database_unavailable`: the database cannot be reached",
                    );
                }
            }
        }
    }
}

/// The extension naming the roles that may call an operation: declared with each handler
/// (`domain::role::roles`), so the spec and `Caller::require` read one list.
pub const ROLES_EXTENSION: &str = "x-vouch-roles";

/// An operation's `x-vouch-roles`, if it has them.
fn roles(extensions: &Option<Extensions>) -> Option<Vec<String>> {
    let roles = extensions.as_ref()?.get(ROLES_EXTENSION)?.as_array()?;
    Some(
        roles
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Readers of the docs see who may call an operation: its `x-vouch-roles` become a last
/// paragraph of its description, `Roles: backend, admin.` (tools read the extension).
struct RoleNotes;

impl Modify for RoleNotes {
    fn modify(&self, openapi: &mut Spec) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                let Some(roles) = roles(&op.extensions) else {
                    continue;
                };
                let line = if roles.is_empty() {
                    "Roles: none (public: no API key).".to_owned()
                } else {
                    format!("Roles: {}.", roles.join(", "))
                };
                op.description = Some(match op.description.take() {
                    Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
                    _ => line,
                });
            }
        }
    }
}

/// The spec exactly as served at `/openapi.json`.
pub fn spec() -> Spec {
    let (_, spec) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    // Modifiers ran on ApiDoc alone; the paths came later, so apply them again.
    let mut spec = spec;
    Security.modify(&mut spec);
    ProblemResponses.modify(&mut spec);
    RoleNotes.modify(&mut spec);
    spec
}

pub fn spec_json() -> String {
    // Serialising a plain data structure cannot fail.
    let mut json = spec()
        .to_pretty_json()
        .expect("the OpenAPI spec serialises");
    json.push('\n');
    json
}
