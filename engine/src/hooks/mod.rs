//! Cloud triggers: platforms' alarm webhooks, read into ALARM entities.

pub mod adapters;
