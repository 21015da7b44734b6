//! Scenario tests against real `xietong` processes. One test binary, one module per feature.

mod access;
mod backup;
mod bad_input;
mod complaints;
mod console_browser;
mod console_push;
mod deadlines;
mod double_random;
mod entities;
mod failover;
mod fanout;
mod federation;
mod fixtures;
mod gateway;
mod intake;
mod membership;
mod nemesis;
mod operations;
mod reference;
mod response_metrics;
mod search;
mod store;
mod task_api;
mod tls;
mod trust;
mod up;
