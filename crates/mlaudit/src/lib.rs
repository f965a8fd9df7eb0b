//! mlaudit: a tamper-evident audit log for ML platforms.
//!
//! The library holds everything; `main.rs` is thin glue. Code map in
//! `ARCHITECTURE.md`.

pub mod auth;
pub mod client;
pub mod config;
pub mod dedup;
pub mod event;
pub mod index;
pub mod keys;
pub mod privacy;
pub mod retention;
pub mod server;
