//! `osprey-agent`.
fn main() {}
