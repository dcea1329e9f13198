//! The pure core: token states, permissions, tenants and principals.
//!
//! Nothing in here does I/O, reads the clock or knows about HTTP or SQL; callers pass
//! `now` and records in, and get decisions out.

pub mod audit;
pub mod client;
pub mod console;
pub mod openid;
pub mod ownership;
pub mod permission;
pub mod pkce;
pub mod principal;
pub mod scope;
pub mod session;
pub mod tenant;
pub mod token;
