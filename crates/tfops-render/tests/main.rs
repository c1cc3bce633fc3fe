//! tfops-render integration tests, one binary: bad input, corpus pass-through fidelity, properties,
//! rendering, generated objects against the real CRD schemas.

mod common;

mod bad_input;
mod corpus;
mod proptest_render;
mod render;
mod schema;
