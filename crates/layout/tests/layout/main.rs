//! Tests of the layout store: one binary, a module per area.

mod gc;
mod interop;
mod names;
mod roots;
mod store;
mod support;
mod writers;
