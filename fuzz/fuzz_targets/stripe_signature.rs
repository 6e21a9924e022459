//! `Stripe-Signature` with the webhook body: verification and event parsing never panic, a
//! header we did not sign is refused, and one we signed (any secret of the list) is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::domain::stripe::{parse_event, signature, verify};

const NOW: i64 = 1_800_000_000;
const SECRETS: [&[u8]; 2] = [b"whsec_old", b"whsec_new"];

fuzz_target!(|data: &[u8]| {
    // header 0xFF body
    let mut parts = data.splitn(2, |&b| b == 0xFF);
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let _ = parse_event(body);
    if let Ok(t) = verify(Some(&header), body, &SECRETS, NOW, 300) {
        // Only a header carrying a real signature of this body passes.
        assert!((t - NOW).abs() <= 300);
        assert!(SECRETS
            .iter()
            .any(|s| header.contains(&signature(s, t, body)[..])));
    }
    // What Stripe sends for this body verifies, among junk items and under either secret.
    let signed = format!(
        "{header_junk},t={NOW},v1={},v0=00",
        signature(SECRETS[1], NOW, body),
        header_junk = header.replace(['t', '='], "")
    );
    assert_eq!(verify(Some(&signed), body, &SECRETS, NOW, 300), Ok(NOW));
});
