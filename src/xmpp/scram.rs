//! SASL SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on the wire: the client's first
//! and final messages parsed, the server's first and final messages written. The arithmetic
//! and the stored credentials are the core's (`switchboard_actors::scram`).
//!
//! Channel binding (`-PLUS`, RFC 5802 §6) is offered where the transport has a TLS session
//! that gives a binding ([`ChannelBindings`]: `tls-exporter`, RFC 9266, and
//! `tls-server-end-point`, RFC 5929): a `-PLUS` exchange must use one of them (`p=`), a plain
//! one must not, and a client that says it could bind (`y`) while the server offered
//! `-PLUS` is refused, as that means something stripped the offer. Without a TLS session (the
//! websocket door, behind its proxy) nothing is offered and `y` is accepted. A user without credentials (unknown, or an account whose password predates them)
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
    /// What `c=` must be: the gs2 header the client sent, then the channel binding data.
    channel_binding: Vec<u8>,
    client_first_bare: String,
    pub server_first: String,
    nonce: String,
    keys: Option<ScramKeys>,
}

/// The channel bindings of one TLS session, by RFC 5056 type name.
#[derive(Debug, Clone, Default)]
pub struct ChannelBindings {
    /// `tls-exporter` (RFC 9266): TLS 1.3 sessions only.
    pub tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point` (RFC 5929 §4): the hash of the server's certificate.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    pub fn any(&self) -> bool {
        self.tls_exporter.is_some() || self.tls_server_end_point.is_some()
    }

    /// The types offered, preferred first.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.tls_exporter.is_some() {
            names.push("tls-exporter");
        }
        if self.tls_server_end_point.is_some() {
            names.push("tls-server-end-point");
        }
        names
    }

    fn data(&self, name: &str) -> Option<&[u8]> {
        match name {
            "tls-exporter" => self.tls_exporter.as_deref(),
            "tls-server-end-point" => self.tls_server_end_point.as_deref(),
            _ => None,
        }
    }
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
    if !matches!(flag, "n" | "y") && !flag.starts_with("p=") {
        return Err("the gs2 header must start with n, y or p=".into());
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
    /// made-up salts, `plus` whether the client chose the `-PLUS` mechanism, `bindings` what
    /// this connection's TLS session offers.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: &str,
        keys: Option<ScramKeys>,
        fake_key: &[u8],
        plus: bool,
        bindings: &ChannelBindings,
    ) -> Result<ScramExchange, String> {
        let (gs2_header, client_first_bare, username, client_nonce) = parse_client_first(client_first)?;
        let flag = gs2_header.split(',').next().unwrap_or_default();
        let mut channel_binding = gs2_header.clone().into_bytes();
        match (flag.strip_prefix("p="), plus) {
            (Some(name), true) => match bindings.data(name) {
                Some(data) => channel_binding.extend_from_slice(data),
                None => {
                    return Err(format!("the channel binding '{name}' is not offered; offered: {:?}", bindings.names()))
                }
            },
            (Some(_), false) => return Err("channel binding (p=) needs a -PLUS mechanism".into()),
            (None, true) => return Err("a -PLUS mechanism needs channel binding (p=)".into()),
            (None, false) if flag == "y" && bindings.any() => {
                return Err("the server offers channel binding: the client's 'y' means the offer was stripped".into())
            }
            (None, false) => {}
        }
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
        Ok(ScramExchange { mechanism, username, channel_binding, client_first_bare, server_first, nonce, keys })
    }

    /// Checks the client's final message; on success the server's final message (`v=…`).
    pub fn finish(&self, client_final: &str) -> Result<String, String> {
        let (without_proof, proof) = client_final.rsplit_once(",p=").ok_or("the proof (p=) is missing")?;
        let mut parts = without_proof.split(',');
        let binding = parts.next().and_then(|p| attribute(p, 'c')).ok_or("the channel binding (c=) is missing")?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.channel_binding.as_slice()) {
            return Err("the channel binding (c=) is not this connection's".into());
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
        assert!(parse_client_first("n,,n=u").unwrap_err().contains("nonce"));
        assert!(parse_client_first("n,,n=u=ZZ,r=a").unwrap_err().contains("saslname"));
        assert!(parse_client_first("x").is_err());
    }

    #[test]
    fn a_whole_exchange_succeeds_with_the_password_and_fails_without() {
        let keys = switchboard_actors::scram::derive("pencil");
        let none = ChannelBindings::default();
        for keys in keys {
            let mechanism = keys.mechanism;
            let exchange =
                ScramExchange::start(mechanism, "n,,n=user,r=cnonce", Some(keys), b"k", false, &none).unwrap();
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
        let unknown =
            ScramExchange::start(ScramMechanism::Sha256, "n,,n=nobody,r=x", None, b"k", false, &none).unwrap();
        let again = ScramExchange::start(ScramMechanism::Sha256, "n,,n=nobody,r=y", None, b"k", false, &none).unwrap();
        let salt = |e: &ScramExchange| e.server_first.split(',').nth(1).unwrap().to_owned();
        assert_eq!(salt(&unknown), salt(&again), "an unknown user's salt is stable, like a real one");
    }

    #[test]
    fn channel_binding_is_required_with_plus_refused_without_and_checked_at_the_end() {
        let bindings = ChannelBindings { tls_exporter: Some(vec![7; 32]), tls_server_end_point: None };
        let keys = switchboard_actors::scram::derive("pencil").into_iter().next();
        let start = |first: &str, plus| {
            ScramExchange::start(ScramMechanism::Sha256, first, keys.clone(), b"k", plus, &bindings)
        };
        assert!(start("n,,n=u,r=a", true).unwrap_err().contains("needs channel binding"));
        assert!(start("p=tls-exporter,,n=u,r=a", false).unwrap_err().contains("-PLUS"));
        assert!(start("y,,n=u,r=a", false).unwrap_err().contains("stripped"));
        assert!(start("p=tls-unique,,n=u,r=a", true).unwrap_err().contains("not offered"));
        assert!(start("n,,n=u,r=a", false).is_ok());
        let exchange = start("p=tls-exporter,,n=u,r=a", true).unwrap();
        let nonce = exchange.server_first.split(',').next().unwrap().trim_start_matches("r=").to_owned();
        let mut wrong = b"p=tls-exporter,,".to_vec();
        wrong.extend_from_slice(&[8; 32]);
        let wrong = format!("c={},r={nonce},p=AAAA", STANDARD.encode(wrong));
        assert!(exchange.finish(&wrong).unwrap_err().contains("not this connection's"));
        let unbound =
            ScramExchange::start(ScramMechanism::Sha256, "y,,n=u,r=a", None, b"k", false, &Default::default());
        assert!(unbound.is_ok(), "'y' is fine where nothing was offered");
    }
}
