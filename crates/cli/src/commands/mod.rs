//! One file per command; each holds its clap arguments and the function that runs it,
//! returning the process's exit code.

pub mod demo;
pub mod deployment_state;
pub mod erase;
pub mod history;
pub mod hold;
pub mod info;
pub mod lineage;
pub mod log;
pub mod proof;
pub mod query;
pub mod reindex;
pub mod retention;
pub mod rotate_master_key;
pub mod send;
pub mod stats;
pub mod subject;
pub mod token;
pub mod verify;
