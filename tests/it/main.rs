//! The integration tests, in one crate so that tonic, sled and the library link once; one
//! module per area (`api_*`, `cli_*`, `domain_*`, `log_*`, `projections_*`, `ledger`,
//! `server_crash`), sharing [`support`]. The CLI and crash tests run the real binaries
//! (`CARGO_BIN_EXE_dipledger`, `CARGO_BIN_EXE_dipledger-bench`).

mod support;

mod api_auth;
mod api_commands;
mod api_event_store;
mod api_export;
mod api_fidelity;
mod api_fuzz;
mod api_limits;
mod api_metrics;
mod api_news_report;
mod api_query;
mod api_server;
mod api_tls;
mod audit;
mod cli_analyst;
mod cli_chart;
mod cli_client;
mod cli_demo;
mod cli_offline;
mod cli_record;
mod cli_serve;
mod cli_token;
mod domain_contract;
mod domain_deciders;
mod domain_news_report;
mod domain_props;
mod faults;
mod ledger;
mod limits_edge;
mod log_backup;
mod log_basic;
mod log_concurrency;
mod log_crash;
mod log_fuzz;
mod log_model;
mod log_upgrade;
mod projections_consistency;
mod projections_news;
mod projections_pipeline;
mod projections_props;
mod projections_snapshot;
mod readme;
mod server_crash;
