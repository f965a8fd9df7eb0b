//! The integration tests of the index, one test binary for all of them (issue 19.9: one
//! link instead of one per file). `index_support` builds ledgers and events for them. Run
//! one area with `cargo test -p index --test it index_query::`.

mod index_support;

mod index_catch_up;
mod index_fuzz;
mod index_paging;
mod index_query;
mod index_rollup_actor;
mod index_scope;
