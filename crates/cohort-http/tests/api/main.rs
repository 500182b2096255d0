//! Black-box tests of the HTTP API: a real server on port 0 over a fresh SQLite
//! database per test, driven with reqwest.

mod activities;
mod auth;
mod automation;
mod browser;
mod builders;
mod customers;
mod helpers;
mod inbox;
mod promotions;
mod query;
mod resources;
mod services;
mod targeting;
mod use_cases;
