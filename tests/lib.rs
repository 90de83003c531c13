//! Osprey integration tests live in `it/`.
