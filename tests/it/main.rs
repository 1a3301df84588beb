//! The integration tests: one binary (one link of the crate and the SDK clients, one
//! `moto_server` for the whole run), a module per area. `util` is the harness: moto through
//! `tests/moto_launcher.py`, a moto account per test, the real SDK clients, fixtures.

mod util;

mod audit;
mod cli;
mod faults;
mod fuzz;
mod infra;
mod lambda;
mod member;
mod moto;
mod options;
mod present;
mod readme;
mod registry_cli;
mod trail;
mod trust;
