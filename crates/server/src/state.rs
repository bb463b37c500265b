//! What every handler shares.

use kefu_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
}

/// Server settings that do not belong to the store.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Mark the session cookie `Secure` (when kefu is served over HTTPS).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> AppState {
        AppState {
            store,
            config: Arc::new(config),
        }
    }
}
