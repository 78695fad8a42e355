//! SASL SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on the wire: the client's first
//! and final messages parsed, the server's first and final messages written. The arithmetic
//! and the stored credentials are the core's (`switchboard_actors::scram`).
//!
//! Channel binding is not offered (no `-PLUS` mechanisms over the websocket door): a client
//! that asks for it (`p=`) is refused; one that could (`y`) is accepted, as no `-PLUS` was
//! offered. A user without credentials (unknown, or an account whose password predates them)
//! is answered with a salt derived from the user name, so the exchange does not tell which
//! names exist; it fails at the proof.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_actors::model::scram::{ScramKeys, ScramMechanism};
use switchboard_actors::scram::{verify_proof, ITERATIONS};

/// An exchange after the server's first message.
#[derive(Debug, Clone)]
pub struct ScramExchange {
    pub mechanism: ScramMechanism,
    pub username: String,
    /// The gs2 header the client sent (`n,,` or `y,,`), which `c=` must repeat.
    gs2_header: String,
    client_first_bare: String,
    pub server_first: String,
    nonce: String,
    keys: Option<ScramKeys>,
}

/// `=2C` and `=3D` in a SCRAM user name (RFC 5802 §5.1).
fn decode_saslname(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn attribute(part: &str, name: char) -> Option<&str> {
    part.strip_prefix(name).and_then(|r| r.strip_prefix('='))
}

/// The client's first message: its gs2 header, bare part, user name and nonce.
pub fn parse_client_first(message: &str) -> Result<(String, String, String, String), String> {
    let (flag, rest) = message.split_once(',').ok_or("not a SCRAM client-first message")?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err("channel binding is not offered here".into()),
        _ => return Err("the gs2 header must start with n, y or p=".into()),
    }
    let (authzid, bare) = rest.split_once(',').ok_or("not a SCRAM client-first message")?;
    if bare.starts_with("m=") {
        return Err("SCRAM extensions (m=) are not supported".into());
    }
    let mut parts = bare.split(',');
    let user = parts.next().and_then(|p| attribute(p, 'n')).ok_or("the user name (n=) is missing")?;
    let nonce =
        parts.next().and_then(|p| attribute(p, 'r')).filter(|r| !r.is_empty()).ok_or("the nonce (r=) is missing")?;
    let username = decode_saslname(user).ok_or("the user name is not a valid saslname")?;
    let gs2 = format!("{flag},{authzid},");
    Ok((gs2, bare.to_owned(), username, nonce.to_owned()))
}

impl ScramExchange {
    /// Answers a client's first message; `keys` are the user's credentials for the mechanism
    /// (none: an unknown user, or one without credentials), `fake_key` the server's secret for
    /// made-up salts.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: &str,
        keys: Option<ScramKeys>,
        fake_key: &[u8],
    ) -> Result<ScramExchange, String> {
        let (gs2_header, client_first_bare, username, client_nonce) = parse_client_first(client_first)?;
        let nonce = format!("{client_nonce}{}", switchboard_actors::random::random_hex(18));
        let (salt, iterations) = match &keys {
            Some(k) => (k.salt.clone(), k.iterations),
            None => {
                let mut mac = Hmac::<Sha256>::new_from_slice(fake_key).expect("HMAC takes any key length");
                mac.update(username.as_bytes());
                (mac.finalize().into_bytes()[..16].to_vec(), ITERATIONS)
            }
        };
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
        Ok(ScramExchange { mechanism, username, gs2_header, client_first_bare, server_first, nonce, keys })
    }

    /// Checks the client's final message; on success the server's final message (`v=…`).
    pub fn finish(&self, client_final: &str) -> Result<String, String> {
        let (without_proof, proof) = client_final.rsplit_once(",p=").ok_or("the proof (p=) is missing")?;
        let mut parts = without_proof.split(',');
        let binding = parts.next().and_then(|p| attribute(p, 'c')).ok_or("the channel binding (c=) is missing")?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err("the channel binding does not repeat the gs2 header".into());
        }
        let nonce = parts.next().and_then(|p| attribute(p, 'r')).ok_or("the nonce (r=) is missing")?;
        if nonce != self.nonce {
            return Err("the nonce is not this exchange's".into());
        }
        let proof = STANDARD.decode(proof).map_err(|_| "the proof is not base64")?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let keys = self.keys.as_ref().ok_or("wrong user name or password")?;
        let signature = verify_proof(keys, auth_message.as_bytes(), &proof).ok_or("wrong user name or password")?;
        Ok(format!("v={}", STANDARD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_messages_are_read_and_bad_ones_named() {
        let (gs2, bare, user, nonce) = parse_client_first("n,,n=us=2Cer=3D,r=abc").unwrap();
        assert_eq!(
            (gs2.as_str(), bare.as_str(), user.as_str(), nonce.as_str()),
            ("n,,", "n=us=2Cer=3D,r=abc", "us,er=", "abc")
        );
        assert!(parse_client_first("p=tls-unique,,n=u,r=a").unwrap_err().contains("channel binding"));
        assert!(parse_client_first("n,,n=u").unwrap_err().contains("nonce"));
        assert!(parse_client_first("n,,n=u=ZZ,r=a").unwrap_err().contains("saslname"));
        assert!(parse_client_first("x").is_err());
    }

    #[test]
    fn a_whole_exchange_succeeds_with_the_password_and_fails_without() {
        let keys = switchboard_actors::scram::derive("pencil");
        for keys in keys {
            let mechanism = keys.mechanism;
            let exchange = ScramExchange::start(mechanism, "n,,n=user,r=cnonce", Some(keys), b"k").unwrap();
            let server_first = exchange.server_first.clone();
            let nonce = server_first.split(',').next().unwrap().trim_start_matches("r=");
            let salt = STANDARD.decode(server_first.split(',').nth(1).unwrap().trim_start_matches("s=")).unwrap();
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("n=user,r=cnonce,{server_first},{without_proof}");
            let (proof, expected) =
                switchboard_actors::scram::client_proof((&salt, ITERATIONS), mechanism, "pencil", auth.as_bytes());
            let answer = exchange.finish(&format!("{without_proof},p={}", STANDARD.encode(&proof))).unwrap();
            assert_eq!(answer, format!("v={}", STANDARD.encode(expected)));
            let (wrong, _) =
                switchboard_actors::scram::client_proof((&salt, ITERATIONS), mechanism, "x", auth.as_bytes());
            assert!(exchange.finish(&format!("{without_proof},p={}", STANDARD.encode(wrong))).is_err());
            assert!(exchange
                .finish(&format!("c=biws,r=other,p={}", STANDARD.encode(&proof)))
                .unwrap_err()
                .contains("nonce"));
        }
        let unknown = ScramExchange::start(ScramMechanism::Sha256, "n,,n=nobody,r=x", None, b"k").unwrap();
        let again = ScramExchange::start(ScramMechanism::Sha256, "n,,n=nobody,r=y", None, b"k").unwrap();
        let salt = |e: &ScramExchange| e.server_first.split(',').nth(1).unwrap().to_owned();
        assert_eq!(salt(&unknown), salt(&again), "an unknown user's salt is stable, like a real one");
    }
}
