//! Site user tokens (ImbaChat's user JWT, `specs/vendor_apis.md` §3.4): HS256 over unpadded
//! base64url, header `{"typ":"JWT","alg":"HS256"}`, payload `{"exp","user_id"}` with `user_id`
//! an integer or a string, signed with the site's secret, as the seed's PHP `getJWT` makes
//! them. Checked here by hand so that every refusal says what is wrong: the signature is
//! compared in constant time (`Mac::verify_slice`), `alg` must be HS256 (`none` and every
//! other is refused), `exp` must be a number in the future.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Why a site token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("the token is not a JWT (header.payload.signature in base64url)")]
    Malformed,
    #[error("the token's algorithm is {0:?}; site tokens are HS256")]
    Algorithm(String),
    #[error("the token's signature does not match this site's secret")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token has no exp (expiry) claim, or it is not a number")]
    NoExpiry,
    #[error("the token has no user_id claim (an integer or a string)")]
    NoUserId,
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenRefusal> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| TokenRefusal::Malformed)
}

fn decode_json(part: &str) -> Result<Value, TokenRefusal> {
    serde_json::from_slice(&decode_part(part)?).map_err(|_| TokenRefusal::Malformed)
}

/// The site user id a token signs in, checked against `secret` at `now` (Unix seconds).
pub fn verify(token: &str, secret: &[u8], now: u64) -> Result<String, TokenRefusal> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRefusal::Malformed);
    };
    let header = decode_json(header)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => {}
        Some(other) => return Err(TokenRefusal::Algorithm(other.to_owned())),
        None => return Err(TokenRefusal::Algorithm("none given".into())),
    }
    let signed_len = token.len() - signature.len() - 1;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&token.as_bytes()[..signed_len]);
    mac.verify_slice(&decode_part(signature)?).map_err(|_| TokenRefusal::Signature)?;
    let claims = decode_json(payload)?;
    let exp = claims.get("exp").and_then(|e| e.as_u64().or_else(|| e.as_f64().map(|f| f as u64)));
    let exp = exp.ok_or(TokenRefusal::NoExpiry)?;
    if exp <= now {
        return Err(TokenRefusal::Expired);
    }
    match claims.get("user_id") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(TokenRefusal::NoUserId),
    }
}

/// A token made like the seed's PHP `getJWT` (for tests and tools).
pub fn sign(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_like_the_php_sample_are_accepted_and_every_fault_named() {
        let secret = b"lPXBFPqNg3f661JcegBY0N0dPXqUBdHXqj2cHf04PZgLHxT6z55e20ozojvMRvB8";
        let good = sign(&json!({"exp": 2000, "user_id": 1}), secret);
        assert_eq!(verify(&good, secret, 1000), Ok("1".into()));
        assert_eq!(verify(&sign(&json!({"exp": 2000, "user_id": "P11-A"}), secret), secret, 1000), Ok("P11-A".into()));
        assert_eq!(verify(&good, b"another", 1000), Err(TokenRefusal::Signature));
        assert_eq!(verify(&good, secret, 2000), Err(TokenRefusal::Expired));
        assert_eq!(verify(&sign(&json!({"user_id": 1}), secret), secret, 1), Err(TokenRefusal::NoExpiry));
        assert_eq!(verify(&sign(&json!({"exp": 2000}), secret), secret, 1), Err(TokenRefusal::NoUserId));
        assert_eq!(
            verify(&sign(&json!({"exp": 2000, "user_id": 1.5}), secret), secret, 1),
            Err(TokenRefusal::NoUserId)
        );
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"none"}"#));
        assert_eq!(verify(&none, secret, 1000), Err(TokenRefusal::Algorithm("none".into())));
        assert_eq!(verify("a.b", secret, 1000), Err(TokenRefusal::Malformed));
    }
}
