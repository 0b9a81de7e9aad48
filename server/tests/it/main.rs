//! Integration tests of the reference server: one binary, one module per
//! concern. Servers bind 127.0.0.1:0.

mod cli;
mod connections;
mod crowds;
mod dashboard;
mod endpoints;
mod faults;
mod openai;
mod profile;
mod redis;
mod remote;
mod rollout;
mod stream;
mod support;
mod traffic;
mod validation;
