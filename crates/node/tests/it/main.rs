//! hipfrac-node's integration tests (one binary, as for every crate).

mod stow;
