//! Intentionally empty: this crate exists for its dependency list (see its Cargo.toml), which
//! makes every build of the workspace agree on the features of shared dependencies.
