//! Fastpath workgroups (`name@workgroup.{domain}`): visitors queue, agents get offers.
//!
//! - [`machine`]: the state machine as plain code, `on(input, now) -> effects`, unit-tested
//!   with a fake clock.

pub mod machine;
