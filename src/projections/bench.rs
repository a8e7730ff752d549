//! Benchmarks of the read models (wired into the CLI as `dipledger bench-projections`).
