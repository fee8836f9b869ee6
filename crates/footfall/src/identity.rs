//! Privacy-preserving visitor ids.
//!
//! footfall sets no cookies and stores neither IP addresses nor user agents. To count
//! distinct visitors it derives a [`VisitorId`] from the site, the client's IP address
//! and its user agent with a keyed hash whose key, the [`Salt`], is random and
//! short-lived:
//!
//! - while a salt is in use, the same browser on the same network gets the same id, so
//!   it is counted once;
//! - once the salt is deleted (48 hours after its period starts, see
//!   [`SaltPeriod::expires_at`]), nobody, the operator included, can link an id back to
//!   an address or to ids from other periods, because recomputing it needs the salt.
//!
//! The salt rotates on a schedule ([`SaltRotation`]), by default at the site's local
//! midnight. A consequence the API and docs must state: with daily rotation, "visitors"
//! over a week or longer is a sum of daily unique visitors, since the same person gets a
//! new id each day.
//!
//! Everything here except [`Salt::generate`] is pure; creating, storing and deleting
//! salts happens in the store layer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU8;
use std::str::FromStr;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};

use crate::calendar::{Calendar, DayKey, saturating_shift};

/// The secret key of the visitor-id hash for one rotation period.
///
/// `Debug` never shows the bytes, so a salt that ends up in a log line or a panic
/// message does not leak; use [`Salt::to_hex`] deliberately when storing it.
/// Equality is checked in constant time.
#[derive(Clone)]
pub struct Salt([u8; 32]);

/// A pseudonymous visitor id: the first 16 bytes of a keyed BLAKE3 hash.
///
/// 128 bits make accidental collisions between visitors negligible (a birthday collision
/// needs about 2^64 ids) while keeping store entries small. `Display` gives 32 lowercase
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId([u8; 16]);

/// Whether the IP address is shortened to its network before hashing.
///
/// Truncating makes every client of one network look like one visitor as far as the
/// address is concerned (the user agent still tells browsers apart). That undercounts
/// slightly, but helps where many people share a changing set of addresses (carrier
/// NAT, IPv6 privacy addresses that change daily) and reduces what the hash input says
/// about a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpTruncation {
    /// The full address is hashed.
    #[default]
    None,
    /// IPv4 addresses are cut to their /24 network and IPv6 addresses to their /48.
    Networks,
}

/// When the salt is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaltRotation {
    /// At every local midnight of the site's [`Calendar`] (the default). Period ids are
    /// the local date, `2026-11-30`.
    #[default]
    Daily,
    /// Every so many hours of local clock time, counted from local midnight: with
    /// `Hours(6)` the periods start at 00:00, 06:00, 12:00 and 18:00 local.
    ///
    /// Periods never cross local midnight, so when the number does not divide 24 the
    /// last period of the day is shorter (with 5: 00, 05, 10, 15, 20 and 20:00–24:00
    /// lasts four hours), and 24 or more behaves like `Daily`. Period ids are the local
    /// date and starting hour, `2026-11-30T06`, distinct from daily ids so changing the
    /// setting never reuses a salt.
    Hours(NonZeroU8),
}

/// One salt's rotation period.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SaltPeriod {
    /// Names the period, and so the salt, in store keys: `2026-11-30` for daily
    /// rotation, `2026-11-30T06` for hourly. Only ASCII digits, `-` and `T`.
    pub id: String,
    /// The first instant of the period.
    pub start: Timestamp,
    /// The first instant after the period.
    pub end: Timestamp,
}

/// Why a salt could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {reason}")]
    RandomUnavailable {
        /// What the generator reported.
        reason: String,
    },
    /// A stored salt is not 64 hex digits. The offending text is deliberately not kept:
    /// it may be a secret.
    #[error("a salt must be 64 hexadecimal digits")]
    InvalidSaltHex,
    /// A string is not 32 lowercase hex digits.
    #[error("a visitor id must be 32 lowercase hexadecimal digits")]
    InvalidVisitorId,
}

/// How long a salt is kept after its period starts. A daily salt is needed for one day
/// and then as "the previous salt" for visits that cross midnight (at most the visit
/// timeout, 30 minutes by default); 48 hours leaves ample margin for clock skew between
/// servers and for late batches, and is the limit the product promises.
pub const SALT_RETENTION: SignedDuration = SignedDuration::from_hours(48);

/// Domain-separation tag hashed before the fields. Changing the encoding in any way
/// must change the version, so ids from different encodings can never be confused.
const VISITOR_ID_DOMAIN: &[u8] = b"footfall visitor v1";

/// The message [`VisitorId::derive`] hashes in one call when it fits: a browser's
/// User-Agent (about 100 to 300 bytes) with room to spare.
const MESSAGE_BUFFER: usize = 640;

impl Salt {
    /// A fresh random salt from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`IdentityError::RandomUnavailable`] when the generator fails; the caller must
    /// not fall back to a predictable salt.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| IdentityError::RandomUnavailable {
            reason: error.to_string(),
        })?;
        Ok(Salt(bytes))
    }

    /// A salt with the given bytes, for reading stored salts and for tests.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Salt(bytes)
    }

    /// The salt's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The salt as 64 lowercase hex digits, for storing it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a salt written by [`Salt::to_hex`] (either case).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSaltHex`] unless `text` is exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, IdentityError> {
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| IdentityError::InvalidSaltHex)?;
        Ok(Salt(bytes))
    }
}

impl PartialEq for Salt {
    /// Compares in time independent of where the salts differ, so timing cannot reveal
    /// a salt byte by byte.
    fn eq(&self, other: &Self) -> bool {
        let difference = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0_u8, |accumulated, (left, right)| {
                accumulated | (left ^ right)
            });
        std::hint::black_box(difference) == 0
    }
}

impl Eq for Salt {}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

impl VisitorId {
    /// Derives the visitor id of a client of `site`.
    ///
    /// The id is the first 16 bytes of BLAKE3 in keyed mode, with the salt as key, over
    /// this message:
    ///
    /// ```text
    /// len("footfall visitor v1") "footfall visitor v1"
    /// len(site)                  site (UTF-8)
    /// len(ip)                    ip   (4 bytes for IPv4, 16 for IPv6, after truncation)
    /// len(user_agent)            user_agent (UTF-8, exactly as received)
    /// ```
    ///
    /// where each `len` is the field's length in bytes as a little-endian `u64`.
    ///
    /// The length prefixes are what make the encoding injective. Plain concatenation
    /// would give site `"ab"` with user agent `"c"` the same input as site `"a"` with
    /// user agent `"bc"`, and a client could then pick a user agent that collides with
    /// another site's visitors. With prefixes, different field values always give
    /// different messages.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), which dual-stack sockets report
    /// for IPv4 clients, are hashed as the IPv4 address they carry, so a visitor's id
    /// does not depend on how the server's socket was bound. The deprecated
    /// IPv4-compatible form (`::192.0.2.1`) is left as IPv6. Truncation, if any, is
    /// applied after this normalisation: a mapped address is cut to /24, not /48.
    pub fn derive(
        salt: &Salt,
        site: &str,
        ip: IpAddr,
        user_agent: &str,
        truncation: IpTruncation,
    ) -> Self {
        let canonical_ip = canonical_ip_bytes(ip, truncation);
        let fields = [
            VISITOR_ID_DOMAIN,
            site.as_bytes(),
            canonical_ip.as_slice(),
            user_agent.as_bytes(),
        ];
        // The message is each field after its length (u64, little-endian; usize is at
        // most 64 bits on every supported target, so this is lossless). It is laid out in
        // one buffer and hashed in one call, which costs half of feeding the hasher the
        // eight pieces (it runs on every hit); a message too long for the buffer (a
        // User-Agent of hundreds of bytes) is fed piece by piece, to the same hash.
        let mut message = [0_u8; MESSAGE_BUFFER];
        let mut len = 0;
        for field in fields {
            let end = len + 8 + field.len();
            let Some(room) = message.get_mut(len..end) else {
                return VisitorId::derive_in_pieces(salt, fields);
            };
            let (length, bytes) = room.split_at_mut(8);
            length.copy_from_slice(&(field.len() as u64).to_le_bytes());
            bytes.copy_from_slice(field);
            len = end;
        }
        VisitorId::first_16(&blake3::keyed_hash(salt.as_bytes(), &message[..len]))
    }

    fn derive_in_pieces(salt: &Salt, fields: [&[u8]; 4]) -> Self {
        let mut hasher = blake3::Hasher::new_keyed(salt.as_bytes());
        for field in fields {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        VisitorId::first_16(&hasher.finalize())
    }

    fn first_16(hash: &blake3::Hash) -> Self {
        let mut id = [0_u8; 16];
        id.copy_from_slice(&hash.as_bytes()[..16]);
        VisitorId(id)
    }

    /// An id from its 16 bytes, for reading stored ids.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        VisitorId(bytes)
    }

    /// The id's 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VisitorId({self})")
    }
}

impl FromStr for VisitorId {
    type Err = IdentityError;

    /// Reads the `Display` form: exactly 32 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Uppercase would give a second spelling of the same id in store keys.
        if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(IdentityError::InvalidVisitorId);
        }
        let mut bytes = [0_u8; 16];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| IdentityError::InvalidVisitorId)?;
        Ok(VisitorId(bytes))
    }
}

/// A canonical address: 4 bytes for IPv4 (including IPv4-mapped IPv6), 16 for IPv6.
#[derive(Clone, Copy)]
enum CanonicalIp {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl CanonicalIp {
    fn as_slice(&self) -> &[u8] {
        match self {
            CanonicalIp::V4(bytes) => bytes,
            CanonicalIp::V6(bytes) => bytes,
        }
    }
}

fn canonical_ip_bytes(ip: IpAddr, truncation: IpTruncation) -> CanonicalIp {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        IpAddr::V4(v4) => IpAddr::V4(v4),
    };
    match (ip, truncation) {
        (IpAddr::V4(v4), IpTruncation::None) => CanonicalIp::V4(v4.octets()),
        (IpAddr::V6(v6), IpTruncation::None) => CanonicalIp::V6(v6.octets()),
        (IpAddr::V4(v4), IpTruncation::Networks) => {
            CanonicalIp::V4(truncate_v4_to_slash_24(v4).octets())
        }
        (IpAddr::V6(v6), IpTruncation::Networks) => {
            CanonicalIp::V6(truncate_v6_to_slash_48(v6).octets())
        }
    }
}

fn truncate_v4_to_slash_24(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from_bits(ip.to_bits() & 0xffff_ff00)
}

fn truncate_v6_to_slash_48(ip: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from_bits(ip.to_bits() & !(u128::MAX >> 48))
}

impl SaltRotation {
    /// The rotation period containing instant `at`, in the site's calendar.
    ///
    /// Its `start <= at < end`, except at the very ends of jiff's range where `end`
    /// saturates. Periods follow local clock time, so across daylight-saving changes
    /// they last an hour more or less (Berlin's daily period on 2026-03-29 lasts 23
    /// hours), and a period boundary inside a skipped hour moves to the end of the gap.
    pub fn period(&self, calendar: &Calendar, at: Timestamp) -> SaltPeriod {
        let local = calendar.local_datetime(at);
        let day = local.date();
        let day_id = DayKey::new(day).to_string();
        let hours_per_period = match self {
            SaltRotation::Daily => None,
            SaltRotation::Hours(hours) if hours.get() >= 24 => Some(24),
            SaltRotation::Hours(hours) => Some(hours.get()),
        };
        let Some(hours_per_period) = hours_per_period else {
            return SaltPeriod {
                id: day_id,
                start: calendar.day_start(day),
                end: calendar.next_day_start(at),
            };
        };
        // `local.hour()` is 0..=23, so the product stays below 24 and fits an i8.
        let hour = u8::try_from(local.hour()).unwrap_or(0);
        let start_hour = hour / hours_per_period * hours_per_period;
        let end_hour = start_hour.saturating_add(hours_per_period);
        // The first occurrence, so that both halves of a repeated hour get the same
        // period (and salt). It is never after `at`: the local clock reads at least the
        // start hour at `at`, so that hour has begun, or was skipped by a gap that has ended.
        let start = calendar
            .occurrences(day.to_datetime(local_hour(start_hour)))
            .first;
        let end = if end_hour >= 24 {
            calendar.next_day_start(at)
        } else {
            calendar
                .occurrences(day.to_datetime(local_hour(end_hour)))
                .first_after(at)
                .unwrap_or_else(|| calendar.next_day_start(at))
        };
        SaltPeriod {
            id: format!("{day_id}T{start_hour:02}"),
            start,
            end,
        }
    }

    /// The period just before the one containing `at`: the salt that is still accepted
    /// so that a visit survives a rotation.
    pub fn previous_period(&self, calendar: &Calendar, at: Timestamp) -> SaltPeriod {
        let current = self.period(calendar, at);
        let just_before = saturating_shift(current.start, SignedDuration::from_nanos(-1));
        self.period(calendar, just_before)
    }
}

impl SaltPeriod {
    /// When the salt of this period must be deleted: [`SALT_RETENTION`] (48 hours) after
    /// the period starts.
    pub fn expires_at(&self) -> Timestamp {
        saturating_shift(self.start, SALT_RETENTION)
    }

    /// Whether `at` lies in this period.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// `hour`:00 local, with `hour` below 24.
fn local_hour(hour: u8) -> Time {
    // Callers pass 0..=23; the fallback keeps the function total.
    Time::new(i8::try_from(hour).unwrap_or(0), 0, 0, 0).unwrap_or(Time::midnight())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::num::NonZeroU8;

    use jiff::Timestamp;
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::{Calendar, WeekDefinition};

    const SITE: &str = "cauke.travinh.gov.vn";
    const USER_AGENT: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36";

    fn salt(first_byte: u8) -> Salt {
        let mut bytes = [7_u8; 32];
        bytes[0] = first_byte;
        Salt::from_bytes(bytes)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test addresses are valid")
    }

    fn id(site: &str, address: &str, user_agent: &str, truncation: IpTruncation) -> VisitorId {
        VisitorId::derive(&salt(1), site, ip(address), user_agent, truncation)
    }

    fn instant(text: &str) -> Timestamp {
        text.parse().expect("test instants are valid")
    }

    fn hours(count: u8) -> SaltRotation {
        SaltRotation::Hours(NonZeroU8::new(count).expect("test periods are positive"))
    }

    /// Builds the message by hand, byte by byte, as the documentation of
    /// `VisitorId::derive` describes it, without going through its encoding code.
    fn documented_message(site: &str, ip_bytes: &[u8], user_agent: &str) -> Vec<u8> {
        let mut message = Vec::new();
        message.extend_from_slice(&[19, 0, 0, 0, 0, 0, 0, 0]);
        message.extend_from_slice(b"footfall visitor v1");
        message.extend_from_slice(&(site.len() as u64).to_le_bytes());
        message.extend_from_slice(site.as_bytes());
        message.extend_from_slice(&(ip_bytes.len() as u64).to_le_bytes());
        message.extend_from_slice(ip_bytes);
        message.extend_from_slice(&(user_agent.len() as u64).to_le_bytes());
        message.extend_from_slice(user_agent.as_bytes());
        message
    }

    #[test]
    fn known_answer_matches_the_documented_encoding() {
        let cases: [(&str, &str, &[u8]); 3] = [
            // IPv4 is hashed as its 4 bytes.
            (SITE, "203.0.113.5", &[203, 0, 113, 5]),
            // IPv6 as its 16 bytes.
            (
                SITE,
                "2001:db8::1",
                &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            // A mapped address as the IPv4 address inside it.
            ("", "::ffff:203.0.113.5", &[203, 0, 113, 5]),
        ];
        for (site, address, ip_bytes) in cases {
            let message = documented_message(site, ip_bytes, USER_AGENT);
            let hash = blake3::keyed_hash(salt(1).as_bytes(), &message);
            let derived =
                VisitorId::derive(&salt(1), site, ip(address), USER_AGENT, IpTruncation::None);
            assert_eq!(
                derived.as_bytes()[..],
                hash.as_bytes()[..16],
                "{site} {address}"
            );
        }
    }

    #[test]
    fn known_answer_is_stable() {
        // Pinned so that any change to the encoding (which would silently split every
        // visitor in two for the rest of the day) fails here; the value agrees with the
        // hand-built message above.
        let derived = VisitorId::derive(
            &Salt::from_bytes([0_u8; 32]),
            "example.gov.vn",
            ip("192.0.2.1"),
            "Mozilla/5.0",
            IpTruncation::None,
        );
        let message = documented_message("example.gov.vn", &[192, 0, 2, 1], "Mozilla/5.0");
        let hash = blake3::keyed_hash(&[0_u8; 32], &message);
        assert_eq!(derived.as_bytes()[..], hash.as_bytes()[..16]);
        assert_eq!(derived.to_string(), "045e3a20d6a53de13cf37e348d1b884c");
    }

    #[test]
    fn same_inputs_give_the_same_id() {
        assert_eq!(
            id(SITE, "203.0.113.5", USER_AGENT, IpTruncation::None),
            id(SITE, "203.0.113.5", USER_AGENT, IpTruncation::None)
        );
    }

    #[test]
    fn every_field_changes_the_id() {
        let base = id(SITE, "203.0.113.5", USER_AGENT, IpTruncation::None);
        let other_salt = VisitorId::derive(
            &salt(2),
            SITE,
            ip("203.0.113.5"),
            USER_AGENT,
            IpTruncation::None,
        );
        let variants = [
            ("salt", other_salt),
            (
                "site",
                id(
                    "travinh.gov.vn",
                    "203.0.113.5",
                    USER_AGENT,
                    IpTruncation::None,
                ),
            ),
            (
                "ip",
                id(SITE, "203.0.113.6", USER_AGENT, IpTruncation::None),
            ),
            (
                "user agent",
                id(SITE, "203.0.113.5", "Mozilla/5.0", IpTruncation::None),
            ),
            (
                "empty user agent",
                id(SITE, "203.0.113.5", "", IpTruncation::None),
            ),
        ];
        for (field, variant) in variants {
            assert_ne!(base, variant, "changing the {field} must change the id");
        }
    }

    #[test]
    fn length_prefixes_keep_field_boundaries_apart() {
        // Each pair concatenates to the same bytes; only the length prefixes tell them apart.
        let pairs = [
            (("ab", "c"), ("a", "bc")),
            (("", "abc"), ("abc", "")),
            (("site\u{0}", "ua"), ("site", "\u{0}ua")),
        ];
        for ((site_a, agent_a), (site_b, agent_b)) in pairs {
            assert_eq!(format!("{site_a}{agent_a}"), format!("{site_b}{agent_b}"));
            assert_ne!(
                id(site_a, "203.0.113.5", agent_a, IpTruncation::None),
                id(site_b, "203.0.113.5", agent_b, IpTruncation::None),
                "({site_a:?}, {agent_a:?}) vs ({site_b:?}, {agent_b:?})"
            );
        }
    }

    #[rustfmt::skip]
    const TRUNCATION_CASES: &[(&str, &str, IpTruncation, bool)] = &[
        // (address a, address b, truncation, same id?)
        // Neighbours in one /24 are told apart without truncation ...
        ("203.0.113.5", "203.0.113.200", IpTruncation::None, false),
        // ... and merged with it.
        ("203.0.113.5", "203.0.113.200", IpTruncation::Networks, true),
        // The next /24 is another network.
        ("203.0.113.5", "203.0.114.5", IpTruncation::Networks, false),
        // Addresses in one /48 are merged (the fourth group and beyond are dropped).
        ("2001:db8:1234:1::1", "2001:db8:1234:ffff::2", IpTruncation::Networks, true),
        ("2001:db8:1234:1::1", "2001:db8:1234:ffff::2", IpTruncation::None, false),
        // The neighbouring /48 is not.
        ("2001:db8:1234::1", "2001:db8:1235::1", IpTruncation::Networks, false),
        // A mapped IPv4 address is the IPv4 address, with and without truncation ...
        ("::ffff:203.0.113.5", "203.0.113.5", IpTruncation::None, true),
        ("::ffff:203.0.113.5", "203.0.113.5", IpTruncation::Networks, true),
        // ... and is truncated to /24, not /48 (which would keep all 32 IPv4 bits).
        ("::ffff:203.0.113.5", "203.0.113.9", IpTruncation::Networks, true),
        ("::ffff:203.0.113.5", "::ffff:203.0.114.5", IpTruncation::Networks, false),
        // The deprecated IPv4-compatible form is an ordinary IPv6 address.
        ("::203.0.113.5", "203.0.113.5", IpTruncation::None, false),
        // An IPv4 address and an IPv6 address with the same leading bytes differ.
        ("32.1.13.184", "2001:db8::", IpTruncation::Networks, false),
    ];

    #[test]
    fn truncation_table() {
        for &(a, b, truncation, same) in TRUNCATION_CASES {
            let id_a = id(SITE, a, USER_AGENT, truncation);
            let id_b = id(SITE, b, USER_AGENT, truncation);
            assert_eq!(id_a == id_b, same, "{a} vs {b} with {truncation:?}");
        }
    }

    #[test]
    fn salt_debug_does_not_leak_its_bytes() {
        let salt = Salt::from_bytes([0xab; 32]);
        let debug = format!("{salt:?} {salt:#?}");
        assert_eq!(format!("{salt:?}"), "Salt(<redacted>)");
        assert!(!debug.contains("ab"), "{debug}");
        assert!(!debug.contains("171"), "{debug}");
        let error = Salt::from_hex("zz").expect_err("not hex");
        assert!(!error.to_string().contains("zz"));
    }

    #[test]
    fn salt_hex_round_trips_and_rejects_garbage() {
        let salt = salt(0xfe);
        let text = salt.to_hex();
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("fe07"));
        assert_eq!(Salt::from_hex(&text), Ok(salt.clone()));
        assert_eq!(Salt::from_hex(&text.to_uppercase()), Ok(salt));
        for bad in [
            "",
            &text[..63],
            &format!("{text}0"),
            &format!("{}g", &text[..63]),
        ] {
            assert_eq!(
                Salt::from_hex(bad),
                Err(IdentityError::InvalidSaltHex),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn salts_compare_by_every_byte() {
        assert_eq!(salt(1), salt(1));
        assert_ne!(salt(1), salt(2));
        let mut last_byte_differs = *salt(1).as_bytes();
        last_byte_differs[31] ^= 1;
        assert_ne!(salt(1), Salt::from_bytes(last_byte_differs));
    }

    #[test]
    fn generated_salts_are_random() {
        let first = Salt::generate().expect("the test machine has a random source");
        let second = Salt::generate().expect("the test machine has a random source");
        // Equal 256-bit random values would mean the generator is broken.
        assert_ne!(first, second);
        assert_ne!(first.as_bytes(), &[0_u8; 32]);
    }

    #[test]
    fn visitor_id_text_form() {
        let id = VisitorId::from_bytes([0x0f; 16]);
        assert_eq!(id.to_string(), "0f".repeat(16));
        assert_eq!(format!("{id:?}"), format!("VisitorId({})", "0f".repeat(16)));
        assert_eq!(id.to_string().parse::<VisitorId>(), Ok(id));
        for bad in [
            "",
            "0F".repeat(16).as_str(),
            "0f".repeat(15).as_str(),
            "0f".repeat(17).as_str(),
        ] {
            assert_eq!(
                bad.parse::<VisitorId>(),
                Err(IdentityError::InvalidVisitorId),
                "{bad:?}"
            );
        }
    }

    /// One row of the salt-period table.
    struct PeriodCase {
        zone: &'static str,
        rotation: SaltRotation,
        at: &'static str,
        id: &'static str,
        start: &'static str,
        end: &'static str,
    }

    fn period_cases() -> Vec<PeriodCase> {
        const HO_CHI_MINH: &str = "Asia/Ho_Chi_Minh";
        const BERLIN: &str = "Europe/Berlin";
        const SANTIAGO: &str = "America/Santiago";
        let daily = SaltRotation::Daily;
        #[rustfmt::skip]
        let cases = vec![
            // Noon in Vietnam: the period is the local day, 17:00 UTC to 17:00 UTC.
            PeriodCase { zone: HO_CHI_MINH, rotation: daily, at: "2026-11-30T05:00:00Z", id: "2026-11-30", start: "2026-11-29T17:00:00Z", end: "2026-11-30T17:00:00Z" },
            // Local midnight exactly belongs to the new period ...
            PeriodCase { zone: HO_CHI_MINH, rotation: daily, at: "2026-11-29T17:00:00Z", id: "2026-11-30", start: "2026-11-29T17:00:00Z", end: "2026-11-30T17:00:00Z" },
            // ... and the nanosecond before to the old one.
            PeriodCase { zone: HO_CHI_MINH, rotation: daily, at: "2026-11-29T16:59:59.999999999Z", id: "2026-11-29", start: "2026-11-28T17:00:00Z", end: "2026-11-29T17:00:00Z" },
            // Berlin's 23-hour day (midnight CET to midnight CEST).
            PeriodCase { zone: BERLIN, rotation: daily, at: "2026-03-29T12:00:00Z", id: "2026-03-29", start: "2026-03-28T23:00:00Z", end: "2026-03-29T22:00:00Z" },
            // Berlin's 25-hour day, inside the repeated hour.
            PeriodCase { zone: BERLIN, rotation: daily, at: "2026-10-25T01:30:00Z", id: "2026-10-25", start: "2026-10-24T22:00:00Z", end: "2026-10-25T23:00:00Z" },
            // Hourly, first 02:30 on the fall-back day: hour 2 runs from the first 02:00
            // (CEST, 00:00 UTC) to 03:00 CET (02:00 UTC), two real hours.
            PeriodCase { zone: BERLIN, rotation: hours(1), at: "2026-10-25T00:30:00Z", id: "2026-10-25T02", start: "2026-10-25T00:00:00Z", end: "2026-10-25T02:00:00Z" },
            // The second 02:30 (CET) is in the same period.
            PeriodCase { zone: BERLIN, rotation: hours(1), at: "2026-10-25T01:30:00Z", id: "2026-10-25T02", start: "2026-10-25T00:00:00Z", end: "2026-10-25T02:00:00Z" },
            // Hourly, spring forward: 01:30 CET; the period ends where 02:00 would be, which
            // the gap moves to its end, 03:00 CEST = 01:00 UTC.
            PeriodCase { zone: BERLIN, rotation: hours(1), at: "2026-03-29T00:30:00Z", id: "2026-03-29T01", start: "2026-03-29T00:00:00Z", end: "2026-03-29T01:00:00Z" },
            // 03:00 CEST: hour 2 never happened, so the next period is hour 3.
            PeriodCase { zone: BERLIN, rotation: hours(1), at: "2026-03-29T01:00:00Z", id: "2026-03-29T03", start: "2026-03-29T01:00:00Z", end: "2026-03-29T02:00:00Z" },
            // Six-hour periods on the 23-hour day: 00:00 CET to 06:00 CEST is five real hours.
            PeriodCase { zone: BERLIN, rotation: hours(6), at: "2026-03-29T03:00:00Z", id: "2026-03-29T00", start: "2026-03-28T23:00:00Z", end: "2026-03-29T04:00:00Z" },
            // Six-hour periods in Vietnam: noon is in 12:00-18:00 local (05:00-11:00 UTC).
            PeriodCase { zone: HO_CHI_MINH, rotation: hours(6), at: "2026-11-30T05:00:00Z", id: "2026-11-30T12", start: "2026-11-30T05:00:00Z", end: "2026-11-30T11:00:00Z" },
            // Five-hour periods start at 00, 05, 10, 15, 20; the last one is cut at midnight.
            PeriodCase { zone: HO_CHI_MINH, rotation: hours(5), at: "2026-11-30T14:00:00Z", id: "2026-11-30T20", start: "2026-11-30T13:00:00Z", end: "2026-11-30T17:00:00Z" },
            // 24 hours or more is one period per local day, with an hourly-style id.
            PeriodCase { zone: HO_CHI_MINH, rotation: hours(24), at: "2026-11-30T05:00:00Z", id: "2026-11-30T00", start: "2026-11-29T17:00:00Z", end: "2026-11-30T17:00:00Z" },
            PeriodCase { zone: HO_CHI_MINH, rotation: hours(200), at: "2026-11-30T05:00:00Z", id: "2026-11-30T00", start: "2026-11-29T17:00:00Z", end: "2026-11-30T17:00:00Z" },
            // Santiago's day without a midnight: the daily salt rotates at 01:00 local.
            PeriodCase { zone: SANTIAGO, rotation: daily, at: "2026-09-06T04:00:00Z", id: "2026-09-06", start: "2026-09-06T04:00:00Z", end: "2026-09-07T03:00:00Z" },
            // Hourly there: 01:30 -03 is in hour 1, the first hour of that day.
            PeriodCase { zone: SANTIAGO, rotation: hours(1), at: "2026-09-06T04:30:00Z", id: "2026-09-06T01", start: "2026-09-06T04:00:00Z", end: "2026-09-06T05:00:00Z" },
        ];
        cases
    }

    #[test]
    fn salt_period_table() {
        for case in period_cases() {
            let calendar = Calendar::new(case.zone, WeekDefinition::default()).expect("known zone");
            let period = case.rotation.period(&calendar, instant(case.at));
            let expected = SaltPeriod {
                id: case.id.to_owned(),
                start: instant(case.start),
                end: instant(case.end),
            };
            assert_eq!(
                period, expected,
                "{} {:?} at {}",
                case.zone, case.rotation, case.at
            );
        }
    }

    #[test]
    fn previous_periods() {
        let vietnam = Calendar::default();
        // Five minutes after midnight the previous salt is yesterday's.
        let previous =
            SaltRotation::Daily.previous_period(&vietnam, instant("2026-11-29T17:05:00Z"));
        assert_eq!(previous.id, "2026-11-29");
        assert_eq!(previous.start, instant("2026-11-28T17:00:00Z"));
        assert_eq!(previous.end, instant("2026-11-29T17:00:00Z"));
        // After Berlin's spring-forward gap the previous hourly period is hour 1: hour 2
        // never happened.
        let berlin = Calendar::new("Europe/Berlin", WeekDefinition::default()).expect("known zone");
        let previous = hours(1).previous_period(&berlin, instant("2026-03-29T01:10:00Z"));
        assert_eq!(previous.id, "2026-03-29T01");
        assert_eq!(previous.end, instant("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn salts_expire_48_hours_after_their_period_starts() {
        let period =
            SaltRotation::Daily.period(&Calendar::default(), instant("2026-11-30T05:00:00Z"));
        assert_eq!(period.expires_at(), instant("2026-12-01T17:00:00Z"));
        assert!(period.contains(instant("2026-11-30T05:00:00Z")));
        assert!(!period.contains(period.end));
    }

    const PROPERTY_ZONES: &[&str] = &[
        "Asia/Ho_Chi_Minh",
        "America/Los_Angeles",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "Europe/Berlin",
        "America/Santiago",
        "America/Havana",
        "Asia/Beirut",
        "Pacific/Apia",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
    ];

    fn any_rotation() -> impl Strategy<Value = SaltRotation> {
        prop_oneof![Just(SaltRotation::Daily), (1_u8..=30).prop_map(hours),]
    }

    proptest! {
        #[test]
        fn periods_contain_their_instant_and_tile_time(
            zone in proptest::sample::select(PROPERTY_ZONES),
            rotation in any_rotation(),
            second in 0_i64..4_102_444_800,
        ) {
            let calendar = Calendar::new(zone, WeekDefinition::default()).expect("known zone");
            let at = Timestamp::from_second(second).expect("in range");
            let period = rotation.period(&calendar, at);
            prop_assert!(period.start <= at && at < period.end, "{:?}", period);
            prop_assert!(period.id.bytes().all(|byte| byte.is_ascii_digit() || byte == b'-' || byte == b'T'));
            // The next period starts where this one ends, and the previous one ends
            // where this one starts.
            let next = rotation.period(&calendar, period.end);
            prop_assert_eq!(next.start, period.end);
            prop_assert_ne!(&next.id, &period.id);
            let previous = rotation.previous_period(&calendar, at);
            prop_assert_eq!(previous.end, period.start);
            prop_assert_ne!(&previous.id, &period.id);
            prop_assert_eq!(period.expires_at(), period.start.checked_add(SALT_RETENTION).unwrap());
        }

        #[test]
        fn derive_accepts_any_input(
            key in any::<[u8; 32]>(),
            site in "\\PC{0,40}",
            octets in any::<[u8; 16]>(),
            user_agent in "\\PC{0,200}",
            networks in any::<bool>(),
            long in 0_usize..3,
        ) {
            let truncation = if networks { IpTruncation::Networks } else { IpTruncation::None };
            let salt = Salt::from_bytes(key);
            let address = IpAddr::V6(Ipv6Addr::from(octets));
            // Around and past the one-call buffer as well as within it.
            let user_agent = user_agent.repeat(1 + long * 3);
            let first = VisitorId::derive(&salt, &site, address, &user_agent, truncation);
            let again = VisitorId::derive(&salt, &site, address, &user_agent, truncation);
            prop_assert_eq!(first, again);
            let ip_bytes = canonical_ip_bytes(address, truncation);
            let message = documented_message(&site, ip_bytes.as_slice(), &user_agent);
            let hash = blake3::keyed_hash(salt.as_bytes(), &message);
            prop_assert_eq!(&first.as_bytes()[..], &hash.as_bytes()[..16]);
            prop_assert_eq!(first.to_string().parse::<VisitorId>(), Ok(first));
        }

        #[test]
        fn moving_a_boundary_between_site_and_user_agent_changes_the_id(
            joined in "[a-z]{0,12}",
            split in 0_usize..=12,
        ) {
            let split = split.min(joined.len());
            let (site, user_agent) = joined.split_at(split);
            let address = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
            let here = VisitorId::derive(&salt(1), site, address, user_agent, IpTruncation::None);
            for other_split in 0..=joined.len() {
                if other_split != split {
                    let (other_site, other_agent) = joined.split_at(other_split);
                    let there = VisitorId::derive(&salt(1), other_site, address, other_agent, IpTruncation::None);
                    prop_assert_ne!(here, there);
                }
            }
        }
    }
}
