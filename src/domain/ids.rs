//! Identifiers: prefixed UUIDv7 (time-ordered, so they double as pagination cursors).

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Whether `s` looks like an id we issued with `prefix` (cheap guard before a database query).
pub fn looks_like(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + 33
        && s.starts_with(prefix)
        && s.as_bytes()[prefix.len()] == b'_'
        && s[prefix.len() + 1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_sortable_and_recognised() {
        let a = new_id("acc");
        let b = new_id("acc");
        assert!(looks_like("acc", &a), "{a}");
        assert!(a < b, "UUIDv7 ids sort by creation time");
        assert!(!looks_like("cli", &a));
        assert!(!looks_like("acc", "acc_nothex"));
        assert!(!looks_like("acc", "../etc/passwd"));
    }
}
