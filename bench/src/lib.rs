//! Benchmarks of the Space API. Nothing here is used by the product:
//!
//! - `benches/authenticated_get.rs`: criterion, the whole app in process (`cargo bench -p space-bench`);
//! - `src/bin/bare.rs`: a bare axum server with a constant JSON answer, the baseline that
//!   `scripts/bench.sh` loads with wrk next to `spacectl serve`.
