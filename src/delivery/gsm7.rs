//! The GSM 03.38 default alphabet that SMS are encoded in when every character is in it: a
//! single message holds 160 septets, where an extension character costs two. Any other
//! character switches the whole message to UCS-2: 70 UTF-16 units.

/// The basic set, one septet each (the escape code excluded).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table, two septets each (escape, then the character).
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// The septets of one SMS segment in GSM-7.
pub const SEGMENT_SEPTETS: usize = 160;
/// The UTF-16 units of one SMS segment in UCS-2.
pub const SEGMENT_UCS2_UNITS: usize = 70;

pub fn is_gsm7_basic(c: char) -> bool {
    BASIC.contains(c)
}

/// The septets `text` takes in GSM-7; `None` if a character is in neither table (the message
/// would be sent as UCS-2).
pub fn septets(text: &str) -> Option<usize> {
    text.chars().try_fold(0, |n, c| {
        if BASIC.contains(c) {
            Some(n + 1)
        } else if EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

/// Whether `text` is one SMS segment: ≤ 160 septets in GSM-7, else ≤ 70 UTF-16 units.
pub fn fits_one_segment(text: &str) -> bool {
    match septets(text) {
        Some(n) => n <= SEGMENT_SEPTETS,
        None => text.encode_utf16().count() <= SEGMENT_UCS2_UNITS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_have_their_sizes() {
        // 128 codes less the escape; 9 extension characters besides the form feed.
        assert_eq!(BASIC.chars().count(), 127);
        assert_eq!(EXTENSION.chars().count(), 10);
    }

    #[test]
    fn septets_count_extensions_twice_and_refuse_the_rest() {
        assert_eq!(septets("Ihr Code: 123456"), Some(16));
        assert_eq!(septets("5 €"), Some(4));
        assert_eq!(septets("[x]"), Some(5));
        assert_eq!(septets("código"), None, "ó is not GSM-7");
        assert_eq!(septets("l’avez"), None, "the typographic apostrophe is not");
        assert_eq!(septets("認証"), None);
        assert!(fits_one_segment(&"a".repeat(160)));
        assert!(!fits_one_segment(&"a".repeat(161)));
        assert!(!fits_one_segment(&"€".repeat(81)));
        assert!(fits_one_segment(&"認".repeat(70)));
        assert!(!fits_one_segment(&format!("{}ó", "a".repeat(70))));
    }
}
