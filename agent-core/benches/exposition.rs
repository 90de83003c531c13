//! Exposition benchmarks (filled in with the parser).
fn main() {}
