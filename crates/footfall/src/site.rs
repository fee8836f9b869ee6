//! Site identifiers.
//!
//! A site id reaches store keys, file names, metric allow-lists and URLs, so it can only be
//! constructed valid: `[a-z0-9][a-z0-9-]{0,62}`, checked after any percent-decoding the
//! caller does. Nothing else in the library accepts a site name as a bare string.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The longest site id accepted, in bytes (a DNS label's limit, so ids can become
/// subdomains).
pub const MAX_SITE_ID_LEN: usize = 63;

/// A validated site id: one to 63 characters of `[a-z0-9-]`, not starting with `-`.
///
/// Shared rather than copied: every hit carries its site's id, and cloning one is a
/// reference count. It borrows as `str`, so maps keyed by ids can be searched with a
/// string that was only validated ([`SiteId::validate`]), without building an id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(Arc<str>);

/// Why a string is not a valid [`SiteId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteIdError {
    /// The string is empty.
    #[error("site id is empty")]
    Empty,
    /// The string is longer than [`MAX_SITE_ID_LEN`] bytes.
    #[error("site id is longer than {MAX_SITE_ID_LEN} characters")]
    TooLong,
    /// The string starts with a hyphen.
    #[error("site id must start with a lowercase letter or a digit")]
    LeadingHyphen,
    /// The string holds a character outside `[a-z0-9-]`; its byte offset is given.
    #[error("site id may only contain a-z, 0-9 and '-' (bad character at byte {0})")]
    BadCharacter(usize),
}

impl SiteId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, SiteIdError> {
        validate(id)?;
        Ok(SiteId(Arc::from(id)))
    }

    /// Checks `id` as [`SiteId::new`] does, without making an id.
    pub fn validate(id: &str) -> Result<(), SiteIdError> {
        validate(id)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(id: &str) -> Result<(), SiteIdError> {
    let bytes = id.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(SiteIdError::Empty);
    };
    if bytes.len() > MAX_SITE_ID_LEN {
        return Err(SiteIdError::TooLong);
    }
    if first == b'-' {
        return Err(SiteIdError::LeadingHyphen);
    }
    match bytes
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        Some(offset) => Err(SiteIdError::BadCharacter(offset)),
        None => Ok(()),
    }
}

impl FromStr for SiteId {
    type Err = SiteIdError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        SiteId::new(id)
    }
}

impl TryFrom<String> for SiteId {
    type Error = SiteIdError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        validate(&id)?;
        Ok(SiteId(Arc::from(id)))
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for SiteId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SiteId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects() {
        let cases: &[(&str, Result<(), SiteIdError>)] = &[
            ("demo", Ok(())),
            ("caukee", Ok(())),
            ("0", Ok(())),
            ("tra-vinh-2", Ok(())),
            ("a-", Ok(())),
            ("", Err(SiteIdError::Empty)),
            ("-demo", Err(SiteIdError::LeadingHyphen)),
            ("Demo", Err(SiteIdError::BadCharacter(0))),
            ("de mo", Err(SiteIdError::BadCharacter(2))),
            ("a{b}", Err(SiteIdError::BadCharacter(1))),
            ("a*", Err(SiteIdError::BadCharacter(1))),
            ("../etc", Err(SiteIdError::BadCharacter(0))),
            ("a/b", Err(SiteIdError::BadCharacter(1))),
            ("a%2Fb", Err(SiteIdError::BadCharacter(1))),
            ("cầu", Err(SiteIdError::BadCharacter(1))),
            ("a\u{202e}b", Err(SiteIdError::BadCharacter(1))),
            ("a\0", Err(SiteIdError::BadCharacter(1))),
            ("a:b", Err(SiteIdError::BadCharacter(1))),
        ];
        for (input, expected) in cases {
            assert_eq!(SiteId::new(input).map(|_| ()), *expected, "input {input:?}");
        }
        let longest = "a".repeat(MAX_SITE_ID_LEN);
        assert!(SiteId::new(&longest).is_ok());
        assert_eq!(
            SiteId::new(&format!("{longest}a")),
            Err(SiteIdError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn valid_exactly_when_matching_the_pattern(s in "\\PC{0,70}") {
            let by_pattern = !s.is_empty()
                && s.len() <= MAX_SITE_ID_LEN
                && !s.starts_with('-')
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            prop_assert_eq!(SiteId::new(&s).is_ok(), by_pattern);
        }

        #[test]
        fn generated_ids_round_trip(s in "[a-z0-9][a-z0-9-]{0,62}") {
            let id = SiteId::new(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(id.to_string().parse::<SiteId>().unwrap(), id);
        }
    }
}
