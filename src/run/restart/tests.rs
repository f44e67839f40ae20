//! Tests of the restart engine against the in-memory API server.
