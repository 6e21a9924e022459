//! Benchmark helper for `bench/run.sh`.
//!
//!   vouch-bench raw [--secs 3]   single-thread ops/s of Vouch's own signing and verification
//!                                path (claims → JWS with the parsed key; full authorize checks)
//!   vouch-bench seed             create a backend and a meeting client and an entitled account
//!                                in the configured database; prints shell assignments
//!   vouch-bench mint ACCOUNT N   sign N distinct tokens for ACCOUNT with the database's current
//!                                key (as issuance would), one per line: authorize's first-seen path
//!   vouch-bench population --to N
//!                                grow the bench population (`population.rs`) to N accounts
//!   vouch-bench requests KIND --accounts N --count C [--dist uniform|zipf] [--seed S]
//!                                C request lines for `bench/wrk-post.lua` against the first N
//!                                accounts of the population: `issue` (token requests for
//!                                entitled accounts), `stripe` (signed subscription events, each
//!                                for a new subscription of an active account; reads
//!                                VOUCH_STRIPE__WEBHOOK_SECRETS), `sms` (SMS verification starts,
//!                                distinct accounts and numbers); `tokens` prints C tokens for
//!                                entitled accounts (authorize's first-seen path), signed with
//!                                the database's current key as issuance would sign them
//!   vouch-bench status-list [--secs 3]
//!                                a 2^20-index status list (a tenth of its indices changed): one
//!                                full build, serving it from the cache, and rebuilding it after
//!                                one change (compress + sign)

mod population;

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use chrono::Utc;
use vouch::{
    config::{Algorithm, Settings},
    crypto::{random_bytes, MasterKey},
    db::Db,
    domain::{
        evidence::{EvidenceKind, EvidenceStatus},
        role::Role,
    },
    services::{clients, evidence, keys},
    tokens::{keyring::Keys, verify::verify, Claims},
};

fn bench(name: &str, secs: f64, mut op: impl FnMut()) {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        op();
    }
    let mut lat: Vec<u64> = Vec::with_capacity(500_000);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        op();
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((p / 100.0) * (lat.len() - 1) as f64).round() as usize] as f64 / 1e6;
    println!(
        "{name} {:.0} {:.4} {:.4}",
        lat.len() as f64 / total,
        pct(50.0),
        pct(99.0)
    );
}

fn raw(secs: f64) -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::defaults();
    let master = MasterKey::new(random_bytes::<32>());
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        settings.tokens.algorithm = alg;
        let generated = vouch::tokens::keys::generate(alg)?;
        let now = Utc::now();
        let model = entities::signing_key::Model {
            kid: generated.jwk.kid.clone(),
            alg: alg.as_str().to_owned(),
            public_jwk: serde_json::to_string(&generated.jwk)?,
            private_key_sealed: master.seal(&generated.jwk.kid, &generated.pkcs8),
            created_at: now,
            activates_at: now,
            retires_at: None,
            removes_at: None,
        };
        let keys = Keys::default();
        keys.load(&[model], &master)?;
        let ring = keys.current();
        let claims = |now: i64| Claims {
            iss: settings.tokens.issuer.clone(),
            sub: "acc_0192f5c8a3b47d2e9c1f0a6b5d4e3c2b".into(),
            aud: "meeting".into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                random_bytes::<16>(),
            ),
            ent: vec!["e2ee".into()],
            evidence: vec![vouch::tokens::TokenEvidence::Phone],
            cnf: None,
            status: None,
        };
        let name = alg.as_str().to_lowercase();
        bench(&format!("vouch-raw-{name}-sign"), secs, || {
            let signer = ring.signer(Utc::now()).expect("signer");
            let payload = serde_json::to_vec(&claims(Utc::now().timestamp())).expect("claims");
            std::hint::black_box(signer.sign(&payload).expect("sign"));
        });
        let signer = ring.signer(Utc::now()).ok_or("no signer")?;
        let token = signer.sign(&serde_json::to_vec(&claims(Utc::now().timestamp()))?)?;
        bench(&format!("vouch-raw-{name}-verify"), secs, || {
            std::hint::black_box(
                verify(&ring, &token, &settings.tokens, Utc::now()).expect("verify"),
            );
        });
    }
    Ok(())
}

fn status_list(secs: f64) -> Result<(), Box<dyn std::error::Error>> {
    use vouch::{
        services::status_lists::Change,
        status_list::{cache::StatusLists, settings::StatusListSettings},
    };
    const SIZE: u32 = 1 << 20;
    let master = MasterKey::new(random_bytes::<32>());
    let generated = vouch::tokens::keys::generate(Algorithm::EdDSA)?;
    let now = Utc::now();
    let model = entities::signing_key::Model {
        kid: generated.jwk.kid.clone(),
        alg: Algorithm::EdDSA.as_str().to_owned(),
        public_jwk: serde_json::to_string(&generated.jwk)?,
        private_key_sealed: master.seal(&generated.jwk.kid, &generated.pkcs8),
        created_at: now,
        activates_at: now,
        retires_at: None,
        removes_at: None,
    };
    let keys = Keys::default();
    keys.load(&[model], &master)?;
    let ring = keys.current();
    let issuer = "https://vouch.example";
    let lists = StatusLists::new(&StatusListSettings::default());
    let list = entities::status_list::Model {
        id: 1,
        size: SIZE as i64,
        allocated: SIZE as i64,
    };
    // A tenth of the accounts entitled or suspended, the rest not entitled: random bytes
    // decide which, so the list compresses like a real one rather than like zeros.
    let mut changes = Vec::new();
    let mut seq = 0;
    for chunk in 0..(SIZE / 10 / 64) {
        let draws = random_bytes::<128>();
        for (i, pair) in draws.chunks_exact(2).enumerate() {
            seq += 1;
            changes.push(Change {
                list_id: 1,
                idx: (u16::from_le_bytes([pair[0], pair[1]]) as u32 * 16 + chunk * 7 + i as u32)
                    % SIZE,
                value: if pair[0] % 5 == 0 { 2 } else { 0 },
                seq,
            });
        }
    }
    lists.apply(&[list], &changes);
    let started = Instant::now();
    let built = lists
        .build(1, issuer, &ring, Utc::now())?
        .ok_or("no list")?;
    println!(
        "status-list-first-build {:.2} ms, {} indices, {} changed, token {} bytes",
        started.elapsed().as_secs_f64() * 1e3,
        SIZE,
        changes.len(),
        built.jwt.len()
    );
    bench("status-list-serve-cached", secs, || {
        std::hint::black_box(lists.serve(1, issuer, &ring, Utc::now()).expect("serve"));
    });
    let mut n = 0u32;
    bench("status-list-rebuild-after-change", secs, || {
        n = n.wrapping_add(1);
        seq += 1;
        lists.apply(
            &[],
            &[Change {
                list_id: 1,
                idx: n.wrapping_mul(2_654_435_761) % SIZE,
                value: (n % 3) as u8,
                seq,
            }],
        );
        std::hint::black_box(lists.build(1, issuer, &ring, Utc::now()).expect("build"));
    });
    Ok(())
}

async fn seed(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let master = vouch::startup::resolve_master_key(&settings)?;
    let db = Db::connect(&settings)
        .await?
        .with_audit_key(vouch::services::audit::chain_key(&master));
    db.migrate().await?;
    let now = Utc::now();
    let suffix = vouch::crypto::hex(&random_bytes::<4>());
    let txn = db.begin_write().await?;
    keys::ensure(&*txn, &master, &settings.tokens, now)
        .await
        .map_err(|e| e.detail)?;
    let (_, backend) = clients::create(
        &*txn,
        "bench",
        &format!("bench-backend-{suffix}"),
        None,
        Role::Backend,
        now,
    )
    .await
    .map_err(|e| e.detail)?;
    let (_, meeting) = clients::create(
        &*txn,
        "bench",
        &format!("bench-meeting-{suffix}"),
        None,
        Role::Meeting,
        now,
    )
    .await
    .map_err(|e| e.detail)?;
    let account = vouch::services::accounts::create(
        &*txn,
        &master,
        "bench",
        vouch::services::accounts::NewAccount {
            external_id: vouch::domain::account::ExternalId::parse(&format!("bench-{suffix}"))?,
            email: None,
            display_name: None,
        },
        now,
    )
    .await
    .map_err(|e| e.detail)?;
    evidence::record(
        &*txn,
        "bench",
        &account.id,
        evidence::EvidenceChange {
            kind: EvidenceKind::Phone,
            source: "bench".into(),
            status: EvidenceStatus::Active,
            verified_at: now,
            expires_at: None,
        },
        now,
    )
    .await
    .map_err(|e| e.detail)?;
    txn.commit().await?;
    println!(
        "BACKEND_KEY={backend}\nMEETING_KEY={meeting}\nACCOUNT_ID={}",
        account.id
    );
    Ok(())
}

async fn mint(
    settings: Settings,
    account: &str,
    count: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let db = Db::connect(&settings).await?;
    let master = vouch::startup::resolve_master_key(&settings)?;
    let keys = Keys::default();
    keys.load(&keys::all(db.conn()).await?, &master)?;
    let ring = keys.current();
    let now = Utc::now();
    let signer = ring.signer(now).ok_or("no signing key")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let claims = Claims {
            iss: settings.tokens.issuer.clone(),
            sub: account.to_owned(),
            aud: settings.tokens.audiences[0].clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: now.timestamp() + settings.tokens.max_ttl_seconds as i64,
            jti: base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                random_bytes::<16>(),
            ),
            ent: vec!["e2ee".into()],
            evidence: vec![vouch::tokens::TokenEvidence::Phone],
            cnf: None,
            status: None,
        };
        writeln!(out, "{}", signer.sign(&serde_json::to_vec(&claims)?)?)?;
    }
    Ok(())
}

fn opt<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

async fn grow_population(settings: Settings, to: u64) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::connect(&settings).await?;
    db.migrate().await?;
    let started = Instant::now();
    let from = population::size(db.conn()).await?;
    population::grow(db.conn(), to).await?;
    eprintln!(
        "vouch-bench: population {from} -> {to} accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn requests(
    settings: Settings,
    kind: &str,
    accounts: u64,
    count: usize,
    dist: population::Dist,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use population::{line, Rng, Sampler};
    use std::io::Write;
    let mut rng = Rng::new(seed);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let run = vouch::crypto::hex(&random_bytes::<4>());
    match kind {
        "issue" => {
            let sampler = Sampler::new(population::entitled(accounts), dist, &mut rng);
            for _ in 0..count {
                let id = population::account_id(sampler.draw(&mut rng));
                line(&mut out, &format!("/v1/accounts/{id}/tokens"), "{}", None)?;
            }
        }
        "stripe" => {
            let secret = settings
                .stripe
                .webhook_secrets
                .first()
                .ok_or("set VOUCH_STRIPE__WEBHOOK_SECRETS")?;
            let secret = secrecy::ExposeSecret::expose_secret(secret).to_owned();
            let sampler = Sampler::new(population::active(accounts), dist, &mut rng);
            let now = Utc::now();
            for n in 0..count {
                let id = population::account_id(sampler.draw(&mut rng));
                let (body, signature) = population::stripe_event(&run, n, &id, &secret, now);
                line(
                    &mut out,
                    "/v1/webhooks/stripe",
                    &body,
                    Some(("Stripe-Signature", &signature)),
                )?;
            }
        }
        "sms" => {
            let sampler = Sampler::new(population::active(accounts), dist, &mut rng);
            if count > sampler.len() {
                return Err(format!(
                    "{count} distinct accounts asked for, {} active",
                    sampler.len()
                )
                .into());
            }
            for n in 0..count {
                let id = population::account_id(sampler.nth(n));
                let body = format!(
                    r#"{{"channel":"sms","to":"{}"}}"#,
                    population::phone_number(n + seed as usize * count)
                );
                line(
                    &mut out,
                    &format!("/v1/accounts/{id}/verifications"),
                    &body,
                    None,
                )?;
            }
        }
        "tokens" => {
            let db = Db::connect(&settings).await?;
            let master = vouch::startup::resolve_master_key(&settings)?;
            let keys = Keys::default();
            keys.load(&keys::all(db.conn()).await?, &master)?;
            let ring = keys.current();
            let now = Utc::now();
            let signer = ring.signer(now).ok_or("no signing key")?;
            let sampler = Sampler::new(population::entitled(accounts), dist, &mut rng);
            for _ in 0..count {
                let i = sampler.draw(&mut rng);
                let kind = population::kind(i);
                let claims = Claims {
                    iss: settings.tokens.issuer.clone(),
                    sub: population::account_id(i),
                    aud: settings.tokens.audiences[0].clone(),
                    iat: now.timestamp(),
                    nbf: now.timestamp(),
                    exp: now.timestamp() + settings.tokens.max_ttl_seconds as i64,
                    jti: base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        random_bytes::<16>(),
                    ),
                    ent: vec!["e2ee".into()],
                    evidence: vec![if kind == population::Kind::Paying {
                        vouch::tokens::TokenEvidence::Payment
                    } else {
                        vouch::tokens::TokenEvidence::Phone
                    }],
                    cnf: None,
                    status: Some(vouch::tokens::TokenStatus::new(
                        &vouch::status_list::StatusRef {
                            list_id: population::LIST_ID,
                            idx: population::status_index(i),
                        },
                        &settings.tokens.issuer,
                    )),
                };
                writeln!(out, "{}", signer.sign(&serde_json::to_vec(&claims)?)?)?;
            }
        }
        other => {
            return Err(format!("unknown request kind {other}: issue, stripe, sms, tokens").into())
        }
    }
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("raw") => {
            let secs = args
                .iter()
                .position(|a| a == "--secs")
                .and_then(|i| args.get(i + 1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(3.0);
            raw(secs)
        }
        Some("status-list") => {
            let secs = args
                .iter()
                .position(|a| a == "--secs")
                .and_then(|i| args.get(i + 1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(3.0);
            status_list(secs)
        }
        Some("seed") => match Settings::load(None) {
            Ok(settings) => seed(settings).await,
            Err(e) => Err(e.into()),
        },
        Some("population") => match (Settings::load(None), opt::<u64>(&args, "--to")) {
            (Ok(settings), Some(to)) => grow_population(settings, to).await,
            (Err(e), _) => Err(e.into()),
            _ => Err("usage: vouch-bench population --to N".into()),
        },
        Some("requests") => {
            let dist = match opt::<String>(&args, "--dist").as_deref() {
                None | Some("uniform") => Some(population::Dist::Uniform),
                Some("zipf") => Some(population::Dist::Zipf),
                _ => None,
            };
            match (
                Settings::load(None),
                args.get(2),
                opt::<u64>(&args, "--accounts"),
                opt::<usize>(&args, "--count"),
                dist,
            ) {
                (Ok(settings), Some(kind), Some(accounts), Some(count), Some(dist)) => {
                    requests(settings, kind, accounts, count, dist, opt(&args, "--seed").unwrap_or(1)).await
                }
                (Err(e), ..) => Err(e.into()),
                _ => Err("usage: vouch-bench requests issue|stripe|sms|tokens --accounts N --count C [--dist uniform|zipf] [--seed S]".into()),
            }
        }
        Some("mint") => match (
            Settings::load(None),
            args.get(2),
            args.get(3).and_then(|n| n.parse().ok()),
        ) {
            (Ok(settings), Some(account), Some(count)) => mint(settings, account, count).await,
            (Err(e), _, _) => Err(e.into()),
            _ => Err("usage: vouch-bench mint ACCOUNT_ID COUNT".into()),
        },
        _ => {
            eprintln!(
                "usage: vouch-bench raw [--secs N] | status-list [--secs N] | seed   (seed reads VOUCH_* configuration)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouch-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
