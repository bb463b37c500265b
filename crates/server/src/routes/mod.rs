//! Handlers, one module per resource.

pub mod admin;
pub mod automations;
pub mod cases;
pub mod complaints;
pub mod conversations;
pub mod customers;
pub mod intents;
pub mod kb;
pub mod reports;
pub mod routing;
pub mod satisfaction;
pub mod system;
pub mod timeline;
