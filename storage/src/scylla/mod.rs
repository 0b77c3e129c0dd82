//! ScyllaDB backend: being written.
