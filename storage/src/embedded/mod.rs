//! Embedded backend (fjall): being written.
