//! Publish stage: what people and tools see of the intent and the drift report.

mod check_text;
mod declared;
pub mod http;
pub mod metrics;
pub mod page;
pub mod report_json;
mod rule_metrics;
mod rule_text;
pub mod text;

/// Pretty JSON followed by a newline.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": \"serializing failed: {e}\"}}\n"),
    }
}
