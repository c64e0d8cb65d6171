//! Tests of the layout store: one binary, a module per area.

mod interop;
mod store;
mod support;
