//! The tenant's deployed function set, as stored (the functions runtime owns its meaning).

use nimbus_core::NimbusError;
use nimbus_store::functions::{self as rows, StoredFunctionSet};

use super::Tenant;

impl Tenant {
    /// The stored function set, `None` before the first deploy.
    pub async fn function_set(&self) -> Result<Option<StoredFunctionSet>, NimbusError> {
        self.read(|conn| Ok(rows::get(conn)?)).await
    }
}
