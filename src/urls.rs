//! URL text: one component (a path segment or a query value) percent-encoded, letters, digits
//! and `-_.~` kept (RFC 3986 unreserved), for the URLs the server writes (event `url`s, the
//! CLI's requests, users-info requests).

/// `raw` as one URL component.
pub fn component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(super::component("P11 A/é~x"), "P11%20A%2F%C3%A9~x");
    }
}
