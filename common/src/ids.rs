//! Container ids (64 hex digits, shown as 12) and Docker-style generated names.

use rand::Rng;

/// A fresh random id: 64 lowercase hex digits.
pub fn new_id() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// The short form shown in tables.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nimble",
    "proud", "quiet", "swift", "tender", "vivid", "witty", "bold", "crisp", "deft", "jolly",
];
const NOUNS: &[&str] = &[
    "otter", "heron", "maple", "falcon", "cedar", "lynx", "comet", "harbor", "willow", "badger",
    "pebble", "ember", "fjord", "aspen", "robin", "tundra", "quartz", "meadow", "beacon", "walrus",
];

/// A readable name like `swift_heron_3f2a` for containers created without `--name`.
pub fn random_name() -> String {
    let mut rng = rand::rng();
    let a = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let n = NOUNS[rng.random_range(0..NOUNS.len())];
    format!("{a}_{n}_{:04x}", rng.random::<u16>())
}

/// Container names follow Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok_first || !ok_rest || name.len() > 128 {
        return Err(format!(
            "invalid container name {name:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 128)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_unique() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
    }

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..100 {
            validate_name(&random_name()).unwrap();
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("web-1.a_b").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(129)).is_err());
    }
}
