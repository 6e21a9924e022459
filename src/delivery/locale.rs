//! The languages verification messages are written in: one Project Fluent file per language
//! under `locales/` (compiled in), the negotiation of a requested BCP 47 tag against them
//! (`de-AT` → `de`, `pt` → `pt-BR`, anything else → `en`), and rendering along the fallback
//! chain `pt-BR` → `pt` → `en`, so a file that lacks a message falls back to English.

use std::{str::FromStr, sync::LazyLock};

use fluent_bundle::{concurrent::FluentBundle, FluentArgs, FluentResource};
use fluent_langneg::{negotiate_languages, NegotiationStrategy};
use unic_langid::LanguageIdentifier;

/// Every language messages exist in: its tag and its Fluent source. English first: the last
/// link of every fallback chain.
const SOURCES: [(&str, &str); 7] = [
    ("en", include_str!("locales/en.ftl")),
    ("de", include_str!("locales/de.ftl")),
    ("fr", include_str!("locales/fr.ftl")),
    ("es", include_str!("locales/es.ftl")),
    ("pt-BR", include_str!("locales/pt-BR.ftl")),
    ("ja", include_str!("locales/ja.ftl")),
    ("ar", include_str!("locales/ar.ftl")),
];

/// Languages written right to left.
const RTL: [&str; 4] = ["ar", "fa", "he", "ur"];

static AVAILABLE: LazyLock<Vec<LanguageIdentifier>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .filter_map(|(tag, _)| tag.parse().ok())
        .collect()
});

/// One of the languages messages exist in: the outcome of negotiation, stored with a queued
/// message by its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale(&'static str);

impl Locale {
    pub const ENGLISH: Locale = Locale(SOURCES[0].0);

    /// Every available language.
    pub fn all() -> impl Iterator<Item = Locale> {
        SOURCES.iter().map(|(tag, _)| Locale(tag))
    }

    /// The BCP 47 tag (`pt-BR`), as `Content-Language` and the HTML `lang` give it.
    pub fn tag(self) -> &'static str {
        self.0
    }

    pub fn is_rtl(self) -> bool {
        let language = self.0.split('-').next().unwrap_or_default();
        RTL.contains(&language)
    }

    /// The best match for a requested tag (the caller has checked its shape); English when
    /// nothing matches or nothing was asked for.
    pub fn negotiate(requested: Option<&str>) -> Locale {
        let Some(requested) = requested.and_then(parse_lenient) else {
            return Locale::ENGLISH;
        };
        let default = &AVAILABLE[0];
        let best = negotiate_languages(
            &[requested],
            &AVAILABLE,
            Some(default),
            NegotiationStrategy::Lookup,
        );
        best.first()
            .and_then(|id| Locale::exact(&id.to_string()))
            .unwrap_or(Locale::ENGLISH)
    }

    /// A tag read back from storage: the language it names, or the best match should that
    /// language have been removed since.
    pub fn from_stored(tag: &str) -> Locale {
        Locale::exact(tag).unwrap_or_else(|| Locale::negotiate(Some(tag)))
    }

    fn exact(tag: &str) -> Option<Locale> {
        Locale::all().find(|l| l.0.eq_ignore_ascii_case(tag))
    }
}

/// A tag as a language identifier. Subtags `unic-langid` does not model (extensions such as
/// `-u-ca-buddhist`, private use `-x-...`) are dropped from the end until the rest parses: they
/// never change which language a message is written in.
fn parse_lenient(tag: &str) -> Option<LanguageIdentifier> {
    let mut rest = tag;
    loop {
        if let Ok(id) = LanguageIdentifier::from_str(rest) {
            return Some(id);
        }
        rest = &rest[..rest.rfind('-')?];
    }
}

/// The Fluent bundles of every language, parsed once at start-up.
pub struct Catalog {
    bundles: Vec<(Locale, FluentBundle<FluentResource>)>,
}

impl Catalog {
    /// Parse every locale file; an error names the file and what is wrong in it.
    pub fn load() -> Result<Catalog, String> {
        let mut bundles = Vec::with_capacity(SOURCES.len());
        for (tag, source) in SOURCES {
            let resource = FluentResource::try_new(source.to_owned())
                .map_err(|(_, errors)| format!("locales/{tag}.ftl: {errors:?}"))?;
            let id: LanguageIdentifier = tag
                .parse()
                .map_err(|e| format!("locales/{tag}.ftl: tag: {e}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks around values: they would cost SMS characters and
            // force UCS-2 encoding; the HTML part isolates the code itself.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| format!("locales/{tag}.ftl: {errors:?}"))?;
            bundles.push((Locale(tag), bundle));
        }
        Ok(Catalog { bundles })
    }

    /// The languages to look a message up in, best first: the locale, its language alone
    /// when that exists too (`pt-BR` → `pt`), then English.
    fn chain(&self, locale: Locale) -> Vec<&FluentBundle<FluentResource>> {
        let language = locale.0.split('-').next().unwrap_or_default();
        let mut chain: Vec<Locale> = vec![locale];
        if let Some(parent) = Locale::exact(language) {
            chain.push(parent);
        }
        chain.push(Locale::ENGLISH);
        chain.dedup();
        chain
            .into_iter()
            .filter_map(|l| self.bundles.iter().find(|(b, _)| *b == l))
            .map(|(_, bundle)| bundle)
            .collect()
    }

    /// Message `id` in `locale`, from the first file along the fallback chain that has it.
    /// `None` if none has it or it cannot be formatted (a variable missing from `args`).
    pub fn message(&self, locale: Locale, id: &str, args: &FluentArgs<'_>) -> Option<String> {
        self.chain(locale).into_iter().find_map(|bundle| {
            let pattern = bundle.get_message(id)?.value()?;
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(args), &mut errors);
            errors.is_empty().then(|| text.into_owned())
        })
    }

    /// Whether `locale`'s own file has message `id` (without falling back).
    #[cfg(test)]
    fn has_own(&self, locale: Locale, id: &str) -> bool {
        self.bundles
            .iter()
            .any(|(l, b)| *l == locale && b.has_message(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_tags_find_their_best_match() {
        for (requested, expected) in [
            (None, "en"),
            (Some("de"), "de"),
            (Some("de-AT"), "de"),
            (Some("DE-ch"), "de"),
            (Some("pt-BR"), "pt-BR"),
            (Some("pt"), "pt-BR"),
            (Some("pt-PT"), "pt-BR"),
            (Some("fr-CA"), "fr"),
            (Some("es-419"), "es"),
            (Some("ja-JP"), "ja"),
            (Some("ar-EG"), "ar"),
            (Some("en-GB"), "en"),
            (Some("en-US-x-twain"), "en"),
            (Some("de-DE-u-co-phonebk"), "de"),
            (Some("xx"), "en"),
            (Some("zh-Hans-CN"), "en"),
            (Some("i-klingon"), "en"),
        ] {
            assert_eq!(
                Locale::negotiate(requested).tag(),
                expected,
                "{requested:?}"
            );
        }
    }

    #[test]
    fn stored_tags_read_back_as_their_language() {
        for locale in Locale::all() {
            assert_eq!(Locale::from_stored(locale.tag()), locale);
        }
        assert_eq!(Locale::from_stored("de-AT"), Locale::negotiate(Some("de")));
        assert_eq!(Locale::from_stored("gone"), Locale::ENGLISH);
    }

    #[test]
    fn only_arabic_is_written_right_to_left() {
        let rtl: Vec<_> = Locale::all()
            .filter(|l| l.is_rtl())
            .map(Locale::tag)
            .collect();
        assert_eq!(rtl, ["ar"]);
    }

    #[test]
    fn every_file_has_every_english_message() {
        let catalog = Catalog::load().unwrap();
        let (_, english) = &catalog.bundles[0];
        let ids = [
            "email-subject",
            "email-intro",
            "email-expiry",
            "email-enter",
        ]
        .into_iter()
        .chain(["email-ignore", "email-never-share", "sms-body"]);
        for id in ids {
            assert!(english.has_message(id), "en lacks {id}");
            for locale in Locale::all() {
                assert!(catalog.has_own(locale, id), "{} lacks {id}", locale.tag());
            }
        }
    }

    #[test]
    fn a_message_missing_from_a_file_falls_back_along_the_chain() {
        let catalog = Catalog::load().unwrap();
        let mut args = FluentArgs::new();
        args.set("service", "Vouch");
        assert_eq!(
            catalog.message(Locale::negotiate(Some("de")), "no-such-message", &args),
            None
        );
        // Take German's subject away: the chain ends in English.
        let mut partial = Catalog::load().unwrap();
        let resource = FluentResource::try_new("email-enter = Bitte eingeben.".into()).unwrap();
        let mut bundle = FluentBundle::new_concurrent(vec!["de".parse().unwrap()]);
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).unwrap();
        partial.bundles[1] = (Locale("de"), bundle);
        let de = Locale::negotiate(Some("de-AT"));
        assert_eq!(
            partial.message(de, "email-enter", &args).as_deref(),
            Some("Bitte eingeben.")
        );
        assert_eq!(
            partial.message(de, "email-subject", &args).as_deref(),
            Some("Your Vouch verification code")
        );
        // A variable the caller did not give is an error, not a message with a hole in it.
        assert_eq!(
            catalog.message(de, "email-subject", &FluentArgs::new()),
            None
        );
    }
}
