//! The HTTP client of external services' health loops (services.md §7): `GET <url>` with a
//! timeout, 2xx or 3xx is healthy. `http` and `https` (rustls with the platform's roots);
//! redirects are not followed (a 3xx is itself a success) and no proxy is used.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use nimbus_compute::service::HealthCheck;

/// A [`HealthCheck`] over one shared HTTP client.
pub struct HttpHealthCheck {
    client: Option<reqwest::Client>,
}

impl HttpHealthCheck {
    /// Builds the client. Without one (TLS setup failed) every check fails, which the health
    /// loop reports as `unhealthy`; the cause is logged once here.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("nimbus/", env!("CARGO_PKG_VERSION"), " health-check"))
            .build();
        match client {
            Ok(client) => Self { client: Some(client) },
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client of external service health checks");
                Self { client: None }
            }
        }
    }
}

impl Default for HttpHealthCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthCheck for HttpHealthCheck {
    fn check<'a>(&'a self, url: &'a str, timeout: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let Some(client) = &self.client else { return false };
            match client.get(url).timeout(timeout).send().await {
                Ok(response) => {
                    let status = response.status();
                    status.is_success() || status.is_redirection()
                }
                Err(e) => {
                    tracing::debug!(url, error = %e, "external service health check failed");
                    false
                }
            }
        })
    }
}
