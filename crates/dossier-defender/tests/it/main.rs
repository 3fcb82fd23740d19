//! Integration tests: the client against the emulated tenant.
