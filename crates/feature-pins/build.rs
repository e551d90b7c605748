//! Nothing to build: the build-dependencies of this crate only pin host features (Cargo.toml).
fn main() {}
