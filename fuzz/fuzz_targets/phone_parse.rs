//! Phone numbers as callers type them: parsing never panics, a parsed number is E.164 and
//! parses to itself again, and its masked form never shows the whole number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::domain::phone::PhoneNumber;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    for (region, allowed) in [
        (None, vec![]),
        (Some("US"), vec![]),
        (Some("DE"), vec!["DE".to_owned()]),
    ] {
        if let Ok(phone) = PhoneNumber::parse(input, region, &allowed) {
            let e164 = phone.e164();
            assert!(e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()));
            let again = PhoneNumber::parse(e164, None, &allowed).expect("E.164 parses again");
            assert_eq!(again.e164(), e164);
            assert!(!phone.masked().contains(&e164[1..]));
        }
    }
});
