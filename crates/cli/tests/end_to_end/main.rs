//! The end-to-end tests of the `mlaudit` binary, one test binary for all of them (issue
//! 19.9: one binary links once; 17 linked the same dependencies 17 times). Each module is
//! one area and drives the real binary over loopback; `common` holds their helpers. Run one
//! area with `cargo test -p mlaudit --test end_to_end e2e_query::`.
//!
//! `e2e_permissions` stays a binary of its own: it sets the process's umask, which would
//! reach every test running beside it.

mod common;

mod architecture;
mod e2e_auth;
mod e2e_bad_input;
mod e2e_cli;
mod e2e_crash;
mod e2e_history;
mod e2e_lifecycle;
mod e2e_lineage;
mod e2e_oidc;
mod e2e_privacy;
mod e2e_query;
mod e2e_recovery;
mod e2e_retention;
mod e2e_slow_clients;
mod e2e_stats;
mod e2e_tls;
mod e2e_verify_tessera;
