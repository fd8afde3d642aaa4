//! The naming rule of a dialect without a locale field (CXone): each locale variant of a
//! catalog code is its own tenant skill, whose name carries the code and the locale
//! (`{code}_{locale}` → `Billing_en-us`).
//!
//! A pattern holds `{code}` and `{locale}` once each, with literal text around and between
//! them. Both are required: without `{locale}` the variants of a code in two locales would get
//! one name. Braces are only for the two placeholders; a pattern cannot hold literal braces.
//!
//! # Reading a name back
//!
//! A code may hold almost any character (see `hris/rules.rs`), the separator included, so a
//! name can only be split one way if the separator cannot also be part of the locale. Locale
//! tags are ASCII letters, digits and `-` (in any case, as the tenant returns them); the text
//! between the placeholders must therefore hold at least one other character. With
//! `{locale}-{code}`, `en-us-ab-cd` would read as `en-us` + `ab-cd` or as `en-us-ab` + `cd`
//! (both valid tags and codes), so such patterns are refused.
//!
//! With that rule, the split is unique: any other occurrence of the separator lies inside the
//! code. [`NamePattern::split`] takes the occurrence nearest the locale's end of the name (the
//! last one when the locale comes second, the first when it comes first); an occurrence further
//! in would leave a locale part holding the separator's non-locale character.
//!
//! The tenant compares skill names ignoring case, so two codes differing only in case get
//! names it takes as one; finding such codes is for the caller, which knows the catalog.

use std::fmt;
use std::str::FromStr;

use crate::domain::Locale;

/// The placeholder for the catalog code.
const CODE: &str = "{code}";
/// The placeholder for the locale tag.
const LOCALE: &str = "{locale}";

/// Which placeholder comes first in a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Order {
    /// `…{code}…{locale}…`
    CodeFirst,
    /// `…{locale}…{code}…`
    LocaleFirst,
}

/// A rule that turns a catalog (code, locale) into a tenant skill name and back, such as
/// `{code}_{locale}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamePattern {
    /// The pattern as written.
    text: String,
    /// The literal text before the first placeholder.
    prefix: String,
    /// The literal text between the placeholders (never empty).
    separator: String,
    /// The literal text after the second placeholder.
    suffix: String,
    /// Which placeholder comes first.
    order: Order,
}

/// Why a name pattern was refused. Each message names the pattern and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamePatternError {
    /// `{code}` or `{locale}` is not in the pattern.
    #[error(
        "name pattern `{pattern}` has no `{placeholder}`: it must hold `{{code}}` and `{{locale}}` once each, such as `{{code}}_{{locale}}`"
    )]
    MissingPlaceholder {
        /// The pattern.
        pattern: String,
        /// The placeholder missing: `{code}` or `{locale}`.
        placeholder: &'static str,
    },
    /// `{code}` or `{locale}` is in the pattern more than once.
    #[error(
        "name pattern `{pattern}` holds `{placeholder}` more than once: it must hold `{{code}}` and `{{locale}}` once each"
    )]
    RepeatedPlaceholder {
        /// The pattern.
        pattern: String,
        /// The placeholder repeated: `{code}` or `{locale}`.
        placeholder: &'static str,
    },
    /// A `{…}` that is neither placeholder.
    #[error(
        "`{placeholder}` in name pattern `{pattern}` is not a placeholder: the only ones are `{{code}}` and `{{locale}}` (in lower case)"
    )]
    UnknownPlaceholder {
        /// The pattern.
        pattern: String,
        /// The unknown placeholder, braces included.
        placeholder: String,
    },
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error(
        "name pattern `{pattern}` has a `{brace}` without its {other}: braces are only for `{{code}}` and `{{locale}}`, a skill name cannot hold them",
        other = if *.brace == '{' { "`}`" } else { "`{`" }
    )]
    UnbalancedBrace {
        /// The pattern.
        pattern: String,
        /// The brace on its own.
        brace: char,
    },
    /// A control character (a line break, a tab): a skill name is one line of text.
    #[error(
        "name pattern `{pattern}` holds the control character U+{code:04X}: a skill name is one line of text",
        code = u32::from(*.character)
    )]
    ControlCharacter {
        /// The pattern, control characters shown as U+FFFD.
        pattern: String,
        /// The character.
        character: char,
    },
    /// `{code}{locale}` or `{locale}{code}`: where the code ends and the locale starts
    /// could not be told.
    #[error(
        "name pattern `{pattern}` puts nothing between `{{code}}` and `{{locale}}`, so a name could be read more than one way: put a character such as `_`, `.` or a space between them"
    )]
    NothingBetween {
        /// The pattern.
        pattern: String,
    },
    /// The text between the placeholders could also be part of a locale tag.
    #[error(
        "in name pattern `{pattern}`, `{separator}` between `{{code}}` and `{{locale}}` could also be part of a locale tag (en-us-ab-cd reads as en-us and ab-cd, or en-us-ab and cd): put a character that is not a letter, digit or `-` between them, such as `_`, `.` or a space"
    )]
    AmbiguousSeparator {
        /// The pattern.
        pattern: String,
        /// The text between the placeholders.
        separator: String,
    },
}

/// A piece of a pattern, as read.
enum Piece<'a> {
    /// Text kept as it is.
    Literal(&'a str),
    /// [`CODE`] or [`LOCALE`].
    Placeholder(&'static str),
}

impl NamePattern {
    /// The default pattern's text: `{code}_{locale}` (`Billing_en-us`).
    pub const DEFAULT: &'static str = "{code}_{locale}";

    /// Reads a pattern: `{code}` and `{locale}` once each, no other `{…}`, no brace on its
    /// own, no control character, and between the placeholders some text holding a character
    /// that cannot be part of a locale tag (anything but ASCII letters, digits and `-`).
    pub fn parse(text: &str) -> Result<NamePattern, NamePatternError> {
        let pattern = || text.chars().map(visible).collect::<String>();
        if let Some(character) = text.chars().find(|c| c.is_control()) {
            return Err(NamePatternError::ControlCharacter {
                pattern: pattern(),
                character,
            });
        }
        let pieces = pieces(text)?;
        for placeholder in [CODE, LOCALE] {
            let count = pieces
                .iter()
                .filter(|p| matches!(p, Piece::Placeholder(q) if *q == placeholder))
                .count();
            match count {
                0 => {
                    return Err(NamePatternError::MissingPlaceholder {
                        pattern: pattern(),
                        placeholder,
                    });
                }
                1 => {}
                _ => {
                    return Err(NamePatternError::RepeatedPlaceholder {
                        pattern: pattern(),
                        placeholder,
                    });
                }
            }
        }
        // Exactly two placeholders, and `pieces` never holds two literals in a row: the
        // literals are at most one before, one between and one after.
        let mut literals = [""; 3];
        let mut placeholders = Vec::with_capacity(2);
        for piece in &pieces {
            match *piece {
                Piece::Literal(s) => literals[placeholders.len()] = s,
                Piece::Placeholder(q) => placeholders.push(q),
            }
        }
        let [prefix, separator, suffix] = literals;
        if separator.is_empty() {
            return Err(NamePatternError::NothingBetween { pattern: pattern() });
        }
        if separator.chars().all(in_locale_tag) {
            return Err(NamePatternError::AmbiguousSeparator {
                pattern: pattern(),
                separator: separator.to_string(),
            });
        }
        Ok(NamePattern {
            text: text.to_string(),
            prefix: prefix.to_string(),
            separator: separator.to_string(),
            suffix: suffix.to_string(),
            order: if placeholders[0] == CODE {
                Order::CodeFirst
            } else {
                Order::LocaleFirst
            },
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tenant skill name of `code` in `locale`.
    pub fn render(&self, code: &str, locale: &Locale) -> String {
        self.render_tag(code, locale.as_str())
    }

    /// [`NamePattern::render`] with the tag as text, in whatever case (for tests).
    fn render_tag(&self, code: &str, tag: &str) -> String {
        let (first, second) = match self.order {
            Order::CodeFirst => (code, tag),
            Order::LocaleFirst => (tag, code),
        };
        [
            self.prefix.as_str(),
            first,
            &self.separator,
            second,
            &self.suffix,
        ]
        .concat()
    }

    /// The code and locale a tenant skill name was rendered from, or `None` when the name
    /// does not follow the pattern: its literal text differs (compared exactly), its code part
    /// is empty, or its locale part is not a locale tag. The locale part is read in any case,
    /// as the tenant may return it (`Billing_en-US` → `Billing`, `en-us`).
    pub fn split(&self, name: &str) -> Option<(String, Locale)> {
        let middle = name
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        let (code, tag) = match self.order {
            Order::CodeFirst => middle.rsplit_once(&self.separator)?,
            Order::LocaleFirst => {
                let (tag, code) = middle.split_once(&self.separator)?;
                (code, tag)
            }
        };
        if code.is_empty() {
            return None;
        }
        let locale = Locale::parse(&tag.to_ascii_lowercase()).ok()?;
        Some((code.to_string(), locale))
    }
}

/// Splits a pattern into literals and placeholders, refusing unknown placeholders and braces
/// on their own. Empty literals are left out, so two literals never follow each other.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, NamePatternError> {
    let unbalanced = |brace| NamePatternError::UnbalancedBrace {
        pattern: text.to_string(),
        brace,
    };
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(open) = rest.find(['{', '}']) else {
            pieces.push(Piece::Literal(rest));
            break;
        };
        if open > 0 {
            pieces.push(Piece::Literal(&rest[..open]));
        }
        if rest[open..].starts_with('}') {
            return Err(unbalanced('}'));
        }
        let after = &rest[open + 1..];
        let close = match after.find(['{', '}']) {
            Some(close) if after[close..].starts_with('}') => close,
            _ => return Err(unbalanced('{')),
        };
        let placeholder = &rest[open..open + close + 2];
        pieces.push(match placeholder {
            CODE => Piece::Placeholder(CODE),
            LOCALE => Piece::Placeholder(LOCALE),
            _ => {
                return Err(NamePatternError::UnknownPlaceholder {
                    pattern: text.to_string(),
                    placeholder: placeholder.to_string(),
                });
            }
        });
        rest = &after[close + 1..];
    }
    Ok(pieces)
}

/// Whether `c` can be part of a locale tag as the tenant may return it.
fn in_locale_tag(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Control characters would garble a message: shown as the replacement character.
fn visible(c: char) -> char {
    if c.is_control() { '\u{FFFD}' } else { c }
}

impl Default for NamePattern {
    /// `{code}_{locale}`.
    fn default() -> NamePattern {
        NamePattern::parse(NamePattern::DEFAULT).expect("the default pattern is valid")
    }
}

impl FromStr for NamePattern {
    type Err = NamePatternError;
    fn from_str(text: &str) -> Result<NamePattern, NamePatternError> {
        NamePattern::parse(text)
    }
}

impl fmt::Display for NamePattern {
    /// The pattern as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn locale(tag: &str) -> Locale {
        Locale::parse(tag).unwrap()
    }

    fn pattern(text: &str) -> NamePattern {
        NamePattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn split(pattern_text: &str, name: &str) -> Option<(String, String)> {
        pattern(pattern_text)
            .split(name)
            .map(|(code, locale)| (code, locale.to_string()))
    }

    fn some(code: &str, tag: &str) -> Option<(String, String)> {
        Some((code.to_string(), tag.to_string()))
    }

    #[test]
    fn the_default_is_code_underscore_locale() {
        let p = NamePattern::default();
        assert_eq!(p.as_str(), "{code}_{locale}");
        assert_eq!(p.to_string(), NamePattern::DEFAULT);
        assert_eq!(p.render("Billing", &locale("en-us")), "Billing_en-us");
        assert_eq!(
            p.split("Billing_en-us"),
            Some(("Billing".into(), locale("en-us")))
        );
        assert_eq!("{code}_{locale}".parse::<NamePattern>(), Ok(p));
    }

    #[test]
    fn patterns_keep_their_literal_text() {
        let en_us = locale("en-us");
        for (text, name) in [
            ("{code}_{locale}", "PAY_en-us"),
            ("{locale}:{code}", "en-us:PAY"),
            ("{code} ({locale})", "PAY (en-us)"),
            ("X{code}.{locale}Y", "XPAY.en-usY"),
            ("skill {locale} / {code}!", "skill en-us / PAY!"),
            ("{code}__{locale}", "PAY__en-us"),
        ] {
            let p = pattern(text);
            assert_eq!(p.render("PAY", &en_us), name, "{text}");
            assert_eq!(p.split(name), Some(("PAY".into(), en_us.clone())), "{text}");
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn the_locale_is_read_in_the_case_the_tenant_returns_it() {
        assert_eq!(
            split("{code}_{locale}", "Billing_en-US"),
            some("Billing", "en-us")
        );
        assert_eq!(
            split("{code}_{locale}", "Billing_EN-us"),
            some("Billing", "en-us")
        );
        assert_eq!(
            split("{locale}: {code}", "DE-DE: Zahlungen"),
            some("Zahlungen", "de-de")
        );
        // The code's case is kept as it is.
        assert_eq!(
            split("{code}_{locale}", "bILLing_de-de"),
            some("bILLing", "de-de")
        );
    }

    #[test]
    fn a_code_holding_the_separator_is_split_at_the_locale() {
        assert_eq!(
            split("{code}_{locale}", "Card_Payments_de-de"),
            some("Card_Payments", "de-de")
        );
        assert_eq!(split("{code}_{locale}", "A_en_us"), some("A_en", "us"));
        assert_eq!(
            split("{locale}:{code}", "fr-ca:a:b:c"),
            some("a:b:c", "fr-ca")
        );
        assert_eq!(
            split("{code} ({locale})", "Billing (old) (en-gb)"),
            some("Billing (old)", "en-gb")
        );
        // Overlapping occurrences of a two-character separator.
        assert_eq!(split("{code}__{locale}", "a____en"), some("a__", "en"));
        assert_eq!(split("{locale}__{code}", "en____a"), some("__a", "en"));
        // A code that looks like a rendered name.
        let p = NamePattern::default();
        let name = p.render("PAY_de-de", &locale("en-us"));
        assert_eq!(name, "PAY_de-de_en-us");
        assert_eq!(p.split(&name), Some(("PAY_de-de".into(), locale("en-us"))));
    }

    #[test]
    fn a_name_that_does_not_follow_the_pattern_splits_to_nothing() {
        for name in [
            "",
            "Billing",
            "Billing-en-us",
            "Billing_",
            "_en-us",
            "Billing_e",
            "Billing_en us",
            "Billing_en_",
            "Billing_german",
            "Billing_en-u",
            "Billing_én-us",
        ] {
            assert_eq!(split("{code}_{locale}", name), None, "{name}");
        }
        for name in [
            "XPAY.en-us",
            "PAY.en-usY",
            "xPAY.en-usY",
            "XPAY.en-usy",
            "XPAY-en-usY",
            "X.en-usY",
            "XY",
            "X.Y",
        ] {
            assert_eq!(split("X{code}.{locale}Y", name), None, "{name}");
        }
        for name in ["en-us PAY", "en-us:", ":PAY", "english:PAY", "e:PAY"] {
            assert_eq!(split("{locale}:{code}", name), None, "{name}");
        }
        // The prefix and suffix may not overlap.
        assert_eq!(split("ab{code}_{locale}ba", "aba"), None);
    }

    fn refused(text: &str) -> NamePatternError {
        NamePattern::parse(text).unwrap_err()
    }

    #[test]
    fn a_pattern_without_both_placeholders_is_refused() {
        let err = refused("{code}");
        assert_eq!(
            err,
            NamePatternError::MissingPlaceholder {
                pattern: "{code}".into(),
                placeholder: "{locale}"
            }
        );
        assert_eq!(
            err.to_string(),
            "name pattern `{code}` has no `{locale}`: it must hold `{code}` and `{locale}` once each, such as `{code}_{locale}`"
        );
        assert!(matches!(
            refused("Skill {locale}"),
            NamePatternError::MissingPlaceholder {
                placeholder: "{code}",
                ..
            }
        ));
        assert!(matches!(
            refused(""),
            NamePatternError::MissingPlaceholder {
                placeholder: "{code}",
                ..
            }
        ));
    }

    #[test]
    fn a_placeholder_twice_is_refused() {
        let err = refused("{code}_{locale}_{code}");
        assert!(matches!(
            err,
            NamePatternError::RepeatedPlaceholder {
                placeholder: "{code}",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "name pattern `{code}_{locale}_{code}` holds `{code}` more than once: it must hold `{code}` and `{locale}` once each"
        );
        assert!(matches!(
            refused("{locale}_{code}_{locale}"),
            NamePatternError::RepeatedPlaceholder {
                placeholder: "{locale}",
                ..
            }
        ));
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let err = refused("{name}_{code}_{locale}");
        assert_eq!(
            err,
            NamePatternError::UnknownPlaceholder {
                pattern: "{name}_{code}_{locale}".into(),
                placeholder: "{name}".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "`{name}` in name pattern `{name}_{code}_{locale}` is not a placeholder: the only ones are `{code}` and `{locale}` (in lower case)"
        );
        for (text, placeholder) in [
            ("{Code}_{locale}", "{Code}"),
            ("{code}_{locale}{}", "{}"),
            ("{code}_{ locale }", "{ locale }"),
        ] {
            assert_eq!(
                refused(text),
                NamePatternError::UnknownPlaceholder {
                    pattern: text.into(),
                    placeholder: placeholder.into()
                },
                "{text}"
            );
        }
    }

    #[test]
    fn a_brace_on_its_own_is_refused() {
        for (text, brace) in [
            ("{code}_{locale", '{'),
            ("{code_{locale}", '{'),
            ("{{code}_{locale}", '{'),
            ("{code}_{locale}}", '}'),
            ("}{code}_{locale}", '}'),
            ("{code}_}{locale}", '}'),
            ("{{code}}_{locale}", '{'),
        ] {
            assert_eq!(
                refused(text),
                NamePatternError::UnbalancedBrace {
                    pattern: text.into(),
                    brace
                },
                "{text}"
            );
        }
        assert_eq!(
            refused("{code}_{locale").to_string(),
            "name pattern `{code}_{locale` has a `{` without its `}`: braces are only for `{code}` and `{locale}`, a skill name cannot hold them"
        );
        assert_eq!(
            refused("{code}_{locale}}").to_string(),
            "name pattern `{code}_{locale}}` has a `}` without its `{`: braces are only for `{code}` and `{locale}`, a skill name cannot hold them"
        );
    }

    #[test]
    fn a_control_character_is_refused() {
        let err = refused("{code}\n{locale}");
        assert_eq!(
            err,
            NamePatternError::ControlCharacter {
                pattern: "{code}\u{FFFD}{locale}".into(),
                character: '\n'
            }
        );
        assert_eq!(
            err.to_string(),
            "name pattern `{code}\u{FFFD}{locale}` holds the control character U+000A: a skill name is one line of text"
        );
    }

    #[test]
    fn placeholders_side_by_side_are_refused() {
        for text in ["{code}{locale}", "x{locale}{code}y"] {
            assert_eq!(
                refused(text),
                NamePatternError::NothingBetween {
                    pattern: text.into()
                }
            );
        }
        assert_eq!(
            refused("{code}{locale}").to_string(),
            "name pattern `{code}{locale}` puts nothing between `{code}` and `{locale}`, so a name could be read more than one way: put a character such as `_`, `.` or a space between them"
        );
    }

    #[test]
    fn a_separator_that_could_be_part_of_a_locale_is_refused() {
        // `en-us-ab-cd` would be en-us + ab-cd or en-us-ab + cd.
        for (text, separator) in [
            ("{locale}-{code}", "-"),
            ("{code}-{locale}", "-"),
            ("{code}x{locale}", "x"),
            ("_{code}-1-{locale}_", "-1-"),
        ] {
            assert_eq!(
                refused(text),
                NamePatternError::AmbiguousSeparator {
                    pattern: text.into(),
                    separator: separator.into()
                },
                "{text}"
            );
        }
        assert_eq!(
            refused("{locale}-{code}").to_string(),
            "in name pattern `{locale}-{code}`, `-` between `{code}` and `{locale}` could also be part of a locale tag (en-us-ab-cd reads as en-us and ab-cd, or en-us-ab and cd): put a character that is not a letter, digit or `-` between them, such as `_`, `.` or a space"
        );
        // One character outside a tag is enough; letters, digits and `-` may go with it.
        for text in [
            "{locale} - {code}",
            "{code}-_-{locale}",
            "{code}_v2-{locale}",
        ] {
            assert!(NamePattern::parse(text).is_ok(), "{text}");
        }
    }

    /// The patterns the round trip is checked with: code first and locale first, with and
    /// without prefix and suffix, literal text that is also in codes and in tags, and
    /// separators that can overlap themselves.
    const PATTERNS: &[&str] = &[
        "{code}_{locale}",
        "{locale}:{code}",
        "{locale} - {code}",
        "{code} ({locale})",
        "X{code}.{locale}Y",
        "[{locale}] {code}",
        "{code}__{locale}",
        "{locale}_-_{code}",
        "en{code}_{locale}us",
    ];

    /// A code as the HRIS files allow it: one line, not starting like a formula, at most 128
    /// characters. Built from pieces that look like separators, tags and rendered names, so
    /// that codes holding them are common, and from any other non-control character.
    fn code() -> impl Strategy<Value = String> {
        let first = any::<char>()
            .prop_filter("a code starts with no formula character", |c| {
                !c.is_control() && !['=', '+', '-', '@'].contains(c)
            })
            .prop_map(String::from);
        let piece = prop_oneof![
            3 => proptest::sample::select(vec![
                "_", "-", ":", " ", "(", ")", ".", "[", "]", "X", "Y", "en", "us", "en-us", "_de-de",
                " (fr)", "__", "_-_", " - ", "é", "{", "}", "{code}", "7",
            ])
            .prop_map(String::from),
            1 => any::<char>()
                .prop_filter("one line", |c| !c.is_control())
                .prop_map(String::from),
        ];
        let starts = prop_oneof![
            first,
            proptest::sample::select(vec!["en", "X", "us", "_", "(", "[", "a", "Y"])
                .prop_map(String::from),
        ];
        (starts, proptest::collection::vec(piece, 0..16))
            .prop_map(|(first, rest)| first + &rest.concat())
            .prop_filter("at most 128 characters", |code| code.chars().count() <= 128)
    }

    /// A valid locale tag: a language and up to three subtags.
    fn locale_tag() -> impl Strategy<Value = Locale> {
        "[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}".prop_map(|tag| Locale::parse(&tag).unwrap())
    }

    /// `tag` with some letters in upper case, as a tenant may return it.
    fn mixed_case(tag: &str, upper: &[bool]) -> String {
        tag.chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn a_rendered_name_splits_back_into_its_code_and_locale(
            text in proptest::sample::select(PATTERNS),
            code in code(),
            locale in locale_tag(),
            upper in proptest::collection::vec(any::<bool>(), 1..8),
        ) {
            let p = pattern(text);
            let name = p.render(&code, &locale);
            prop_assert_eq!(p.split(&name), Some((code.clone(), locale.clone())), "{}", name);
            // In the case the tenant may return the tag in, too.
            let shouted = p.render_tag(&code, &mixed_case(locale.as_str(), &upper));
            prop_assert_eq!(p.split(&shouted), Some((code, locale)), "{}", shouted);
        }

        #[test]
        fn a_name_that_splits_is_the_rendering_of_what_it_splits_into(
            text in proptest::sample::select(PATTERNS),
            name in "[a-zA-Z0-9_:. ()\\[\\]XY-]{0,24}",
        ) {
            let p = pattern(text);
            if let Some((code, locale)) = p.split(&name) {
                prop_assert!(!code.is_empty());
                let rendered = p.render(&code, &locale);
                // Only the locale's case can differ.
                prop_assert_eq!(rendered.len(), name.len());
                prop_assert!(rendered.eq_ignore_ascii_case(&name), "{} vs {}", rendered, name);
                prop_assert!(name.contains(&code));
            }
        }
    }
}
