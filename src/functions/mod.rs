//! Azure Functions custom handler.
