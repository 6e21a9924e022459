//! A minimal meeting gate: `POST /join {"token", "room", "device_jkt"?}` admits a participant
//! whose Vouch token verifies (offline: JWKS + status list), and `POST /vouch-events` receives
//! Vouch's webhooks and evicts on `entitlement.revoked`, `account.suspended`, `account.erased`
//! and `token.revoked`. See the README for running it against a local Vouch.
//!
//! VOUCH_URL=http://localhost:8080 VOUCH_MEETING_KEY=... VOUCH_WEBHOOK_SECRET=whsec_... \
//!   cargo run -p vouch-verifier --example meeting_gate

use std::{env, sync::Mutex};

use actix_web::{post, web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;
use vouch_verifier::{webhooks::WebhookVerifier, Options, Verifier};

/// Who is in which room, admitted with which token.
struct Admission {
    room: String,
    account_id: String,
    jti: String,
}

struct Gate {
    verifier: Verifier,
    webhooks: WebhookVerifier,
    admitted: Mutex<Vec<Admission>>,
}

#[derive(Deserialize)]
struct Join {
    token: String,
    room: String,
    device_jkt: Option<String>,
}

#[post("/join")]
async fn join(gate: web::Data<Gate>, join: web::Json<Join>) -> HttpResponse {
    let decision = match gate
        .verifier
        .verify(&join.token, join.device_jkt.as_deref())
        .await
    {
        Ok(decision) => decision,
        // Vouch unreachable and nothing cached: fail closed.
        Err(e) => return HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string()})),
    };
    let (Some(claims), true) = (decision.claims, decision.allow) else {
        return HttpResponse::Forbidden().json(json!({"reason": decision.reason}));
    };
    println!("admit {} to {}", claims.sub, join.room);
    let mut admitted = gate.admitted.lock().unwrap();
    admitted.push(Admission {
        room: join.room.clone(),
        account_id: claims.sub.clone(),
        jti: claims.jti,
    });
    HttpResponse::Ok().json(json!({"admitted": true, "account_id": claims.sub, "room": join.room}))
}

#[post("/vouch-events")]
async fn events(gate: web::Data<Gate>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let Ok(event) = gate.webhooks.verify(id, ts, sig, &body) else {
        return HttpResponse::Unauthorized().finish();
    };
    // The account's status changed: decide its next join on the list as it is now.
    if event.kind.starts_with("entitlement.") || event.kind.starts_with("account.") {
        gate.verifier.refresh_status_lists();
    }
    if let Some((jti, expires_at)) = event.revoked_token() {
        gate.verifier.revoke(jti, expires_at);
    }
    if let Some((account, revoked_before)) = event.revoked_account() {
        gate.verifier.revoke_account(account, revoked_before);
    }
    if let (true, Some(account)) = (event.evicts(), event.account_id()) {
        // A revoked token evicts the admissions it made; the other events, all of the account's.
        let jti = event.revoked_token().map(|(jti, _)| jti);
        gate.admitted.lock().unwrap().retain(|a| {
            let evict = a.account_id == account && jti.is_none_or(|jti| a.jti == jti);
            if evict {
                println!("evict {} from {} ({})", a.account_id, a.room, event.kind);
            }
            !evict
        });
    }
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var = |name: &str| env::var(name).unwrap_or_else(|_| panic!("set {name}"));
    let options = Options::new(
        var("VOUCH_URL"),
        env::var("VOUCH_AUDIENCE").unwrap_or("meeting".into()),
    )
    .status_list_key(var("VOUCH_MEETING_KEY"));
    let gate = web::Data::new(Gate {
        verifier: Verifier::new(options),
        webhooks: WebhookVerifier::new(&var("VOUCH_WEBHOOK_SECRET")).expect("a whsec_ secret"),
        admitted: Mutex::new(Vec::new()),
    });
    let listen = env::var("GATE_LISTEN").unwrap_or("127.0.0.1:8090".into());
    println!("meeting gate on http://{listen}");
    HttpServer::new(move || {
        App::new()
            .app_data(gate.clone())
            .service(join)
            .service(events)
    })
    .bind(listen)?
    .run()
    .await
}
