//! SCRAM's arithmetic (RFC 5802 §3): deriving the stored credentials from a password, and
//! checking a client's proof against them. The SASL messages themselves are the doors'.
//!
//! SaltedPassword = PBKDF2-HMAC(password, salt, i); ClientKey = HMAC(SaltedPassword,
//! "Client Key"); StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key").
//! A proof is ClientKey XOR HMAC(StoredKey, AuthMessage): the server recovers ClientKey and
//! compares H(ClientKey) with StoredKey in constant time.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::scram::{ScramKeys, ScramMechanism};

/// Iterations of new credentials (RFC 7677 asks at least 4096).
pub const ITERATIONS: u32 = 4096;

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn digest(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha1 => Sha1::digest(data).to_vec(),
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// The salted password (PBKDF2 with the mechanism's HMAC).
pub fn salted_password(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha1 => {
            let mut out = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        }
        ScramMechanism::Sha256 => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        }
    }
}

/// The credentials of `password` for `mechanism`, with this salt.
pub fn keys_with_salt(mechanism: ScramMechanism, password: &str, salt: Vec<u8>, iterations: u32) -> ScramKeys {
    let salted = salted_password(mechanism, password, &salt, iterations);
    let client_key = hmac(mechanism, &salted, b"Client Key");
    ScramKeys {
        mechanism,
        stored_key: digest(mechanism, &client_key),
        server_key: hmac(mechanism, &salted, b"Server Key"),
        salt,
        iterations,
    }
}

/// Credentials for every mechanism, each with a fresh random salt.
pub fn derive(password: &str) -> Vec<ScramKeys> {
    ScramMechanism::ALL
        .into_iter()
        .map(|mechanism| {
            let mut salt = vec![0u8; 16];
            getrandom::fill(&mut salt).expect("the operating system's random source is available");
            keys_with_salt(mechanism, password, salt, ITERATIONS)
        })
        .collect()
}

/// Checks a client's proof over `auth_message`; on success, the server's signature (which
/// the client checks in turn).
pub fn verify_proof(keys: &ScramKeys, auth_message: &[u8], proof: &[u8]) -> Option<Vec<u8>> {
    let signature = hmac(keys.mechanism, &keys.stored_key, auth_message);
    if proof.len() != signature.len() {
        return None;
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    let matches = digest(keys.mechanism, &client_key).ct_eq(&keys.stored_key);
    bool::from(matches).then(|| hmac(keys.mechanism, &keys.server_key, auth_message))
}

/// What a client computes (for tests and tools): the proof and the server signature it
/// expects, from the password.
pub fn client_proof(
    keys_salt: (&[u8], u32),
    mechanism: ScramMechanism,
    password: &str,
    auth_message: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let salted = salted_password(mechanism, password, keys_salt.0, keys_salt.1);
    let client_key = hmac(mechanism, &salted, b"Client Key");
    let stored = digest(mechanism, &client_key);
    let signature = hmac(mechanism, &stored, auth_message);
    let proof = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
    let server_key = hmac(mechanism, &salted, b"Server Key");
    (proof, hmac(mechanism, &server_key, auth_message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    /// RFC 5802 §5 and RFC 7677 §3: user "user", password "pencil".
    #[test]
    fn the_rfc_examples_verify() {
        let cases = [
            (
                ScramMechanism::Sha1,
                "QSXCR+Q6sek8bf92",
                "n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
                "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                ScramMechanism::Sha256,
                "W22ZaJ0SNY7soEsUEjb6gQ==",
                "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ];
        for (mechanism, salt, auth, proof, server_signature) in cases {
            let keys = keys_with_salt(mechanism, "pencil", STANDARD.decode(salt).unwrap(), 4096);
            let signature = verify_proof(&keys, auth.as_bytes(), &STANDARD.decode(proof).unwrap()).expect("the proof");
            assert_eq!(STANDARD.encode(&signature), server_signature, "{mechanism:?}");
            let (client, expected) = client_proof((&keys.salt, 4096), mechanism, "pencil", auth.as_bytes());
            assert_eq!(
                (STANDARD.encode(client), STANDARD.encode(expected)),
                (proof.to_owned(), server_signature.to_owned())
            );
            let mut wrong = STANDARD.decode(proof).unwrap();
            wrong[0] ^= 1;
            assert!(verify_proof(&keys, auth.as_bytes(), &wrong).is_none());
            assert_eq!(ScramKeys::from_line(&keys.to_line()), Some(keys));
        }
    }
}
