//! Password hashing with argon2id (PHC strings in the store), on dedicated workers.
//!
//! argon2 is slow and memory-hard by design: each hash or check uses 19 MiB of working
//! memory and tens of milliseconds of CPU. Run on a general blocking pool, every thread ends
//! up keeping its own 19 MiB (the allocator does not give such blocks back), and a login flood
//! takes every core. So hashing runs on a small `SyncArbiter` of [`PasswordWorker`]s
//! (`auth.hash_threads`), each owning one reusable working memory: memory is bounded by the
//! worker count and excess logins wait in the queue.

use actix::prelude::*;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::model::scram::ScramKeys;

/// Argon2id with a working memory that is allocated once and reused.
pub struct PasswordHasher {
    memory: Vec<Block>,
}

impl PasswordHasher {
    pub fn new() -> Self {
        PasswordHasher { memory: vec![Block::default(); Params::DEFAULT.block_count()] }
    }

    fn memory_for(&mut self, params: &Params) -> &mut [Block] {
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        &mut self.memory[..blocks]
    }

    /// Hashes a password with argon2id (default parameters) and a fresh random salt.
    pub fn hash(&mut self, password: &str) -> String {
        let params = Params::DEFAULT;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the operating system's random source is available");
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, self.memory_for(&params))
            .expect("argon2 with default parameters accepts any password");
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let output = Output::new(&out).expect("32 bytes is a valid output length");
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            salt.as_str(),
            output
        )
    }

    /// Checks a password against a PHC hash (any argon2 variant and parameters); a malformed
    /// hash never matches. The comparison is constant-time.
    pub fn verify(&mut self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(version)) => version,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else { return false };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
        let mut out = vec![0u8; expected.len()];
        let hashed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            self.memory_for(&params),
        );
        // `Output`'s equality is constant-time.
        hashed.is_ok() && Output::new(&out).is_ok_and(|actual| actual == expected)
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// One password worker thread.
pub struct PasswordWorker {
    hasher: PasswordHasher,
}

impl Actor for PasswordWorker {
    type Context = SyncContext<Self>;
}

/// Starts `threads` password workers.
pub fn start_password_workers(threads: usize) -> Addr<PasswordWorker> {
    SyncArbiter::start(threads.max(1), || PasswordWorker { hasher: PasswordHasher::new() })
}

/// What a new password is stored as: its argon2 PHC string (PLAIN and REST logins check
/// it) and its SCRAM credentials (SCRAM logins).
#[derive(Debug, Clone)]
pub struct HashedPassword {
    pub phc: String,
    pub scram: Vec<ScramKeys>,
}

/// Hash a new password. Sent by the admin API and start-up.
#[derive(Message)]
#[rtype(result = "HashedPassword")]
pub struct HashPassword {
    pub password: String,
}

impl Handler<HashPassword> for PasswordWorker {
    type Result = MessageResult<HashPassword>;

    fn handle(&mut self, msg: HashPassword, _: &mut SyncContext<Self>) -> Self::Result {
        MessageResult(HashedPassword {
            phc: self.hasher.hash(&msg.password),
            scram: crate::scram::derive(&msg.password),
        })
    }
}

/// Derive the SCRAM credentials of a password just verified (an account made before they
/// were kept gets them at its next login).
#[derive(Message)]
#[rtype(result = "Vec<ScramKeys>")]
pub struct DeriveScram {
    pub password: String,
}

impl Handler<DeriveScram> for PasswordWorker {
    type Result = MessageResult<DeriveScram>;

    fn handle(&mut self, msg: DeriveScram, _: &mut SyncContext<Self>) -> Self::Result {
        MessageResult(crate::scram::derive(&msg.password))
    }
}

/// Check a password against a stored hash. Sent by the authenticator; replies true on a match.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct VerifyPassword {
    pub password: String,
    pub phc: String,
}

impl Handler<VerifyPassword> for PasswordWorker {
    type Result = bool;

    fn handle(&mut self, msg: VerifyPassword, _: &mut SyncContext<Self>) -> bool {
        self.hasher.verify(&msg.password, &msg.phc)
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher as _;

    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let mut hasher = PasswordHasher::new();
        let h = hasher.hash("s3cret");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(hasher.verify("s3cret", &h));
        assert!(!hasher.verify("S3cret", &h));
        assert!(!hasher.verify("s3cret", "not a hash"));
    }

    #[test]
    fn hashes_interoperate_with_the_argon2_crate() {
        let mut hasher = PasswordHasher::new();
        // A hash made by the crate's own API (other parameters) verifies here...
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let theirs =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"pw", &salt).unwrap().to_string();
        assert!(hasher.verify("pw", &theirs));
        assert!(!hasher.verify("px", &theirs));
        // ...and ours verifies with the crate's.
        use argon2::password_hash::PasswordVerifier;
        let ours = hasher.hash("pw");
        assert!(Argon2::default().verify_password(b"pw", &PasswordHash::new(&ours).unwrap()).is_ok());
    }
}
