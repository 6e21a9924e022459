//! Email addresses: parsing never panics, a parsed address parses to itself again, and its
//! masked form shows the domain and no more than the first character of the local part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::domain::account::Email;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(input) {
        let again = Email::parse(email.as_str()).expect("a parsed address parses again");
        assert_eq!(again.as_str(), email.as_str());
        let (local, domain) = email.as_str().rsplit_once('@').expect("an @");
        let first: String = local.chars().take(1).collect();
        assert_eq!(email.masked(), format!("{first}***@{domain}"));
    }
});
