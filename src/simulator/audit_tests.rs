//! End-to-end tests of the audit log.
