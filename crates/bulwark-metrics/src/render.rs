//! The text formats a scraper reads.

use crate::Metrics;

impl Metrics {
    /// The Prometheus text format (0.0.4); serve with [`CONTENT_TYPE`](crate::CONTENT_TYPE).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would be an
        // encoder bug, and a partial page is better than none.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }

    /// The OpenMetrics text format; serve with
    /// [`OPENMETRICS_CONTENT_TYPE`](crate::OPENMETRICS_CONTENT_TYPE).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}
