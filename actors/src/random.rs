//! Unguessable identifiers and secrets from the operating system's CSPRNG.

/// `bytes` random bytes rendered as lowercase hex (2 characters per byte).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source is available");
    hex(&buf)
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_ids_are_distinct_and_sized() {
        let a = super::random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, super::random_hex(16));
        assert_eq!(super::hex(&[0x0f, 0xa0]), "0fa0");
    }
}
