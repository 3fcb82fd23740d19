//! Integration tests of the emulator over HTTPS.
