//! The `footfall` binary.

fn main() {}
