//! Shared helpers live in integration/.
