//! What validating site and trust settings shares: the error that names the setting at
//! fault, and the syntax of hostnames. A leaf: it imports nothing of the crate.

/// A setting that is not valid, named by its path (e.g. `sites[2].time_zone`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct SettingError {
    /// The setting's path.
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

impl SettingError {
    /// The error of the setting at `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> SettingError {
        SettingError {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// True for a DNS hostname: 1 to 253 bytes of dot-separated labels of letters, digits and
/// `-`, each 1 to 63 bytes and neither starting nor ending with `-`.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Lowercases and checks an exact DNS hostname: labels of letters, digits and `-`.
pub fn normalize_hostname(name: &str) -> Option<String> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    is_dns_name(&lower).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_dns_names_lowercased_without_the_root_dot() {
        assert_eq!(
            normalize_hostname("CauKee.TraVinh.gov.vn."),
            Some("caukee.travinh.gov.vn".to_owned())
        );
        for bad in [
            "",
            "a..b",
            "-a.vn",
            "a-.vn",
            "exa mple.vn",
            "*.a.vn",
            "[::1]",
        ] {
            assert_eq!(normalize_hostname(bad), None, "{bad:?}");
        }
        assert!(is_dns_name(&["a"; 127].join(".")));
        assert!(!is_dns_name(&"a".repeat(64)));
    }
}
