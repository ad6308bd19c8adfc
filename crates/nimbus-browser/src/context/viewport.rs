//! [`Viewport`]: the size of a page's layout viewport, in CSS pixels.

use nimbus_core::NimbusError;
use nimbus_core::limits::BROWSER_MAX_VIEWPORT_PX;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Height when none is given.
pub use nimbus_core::limits::BROWSER_DEFAULT_VIEWPORT_HEIGHT as DEFAULT_VIEWPORT_HEIGHT;
/// Width when none is given.
pub use nimbus_core::limits::BROWSER_DEFAULT_VIEWPORT_WIDTH as DEFAULT_VIEWPORT_WIDTH;

/// A page's viewport in CSS pixels (`{width, height}`, each 1..=`BROWSER_MAX_VIEWPORT_PX`);
/// 1280×720 by default. Screenshots of the viewport are exactly this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Viewport {
    /// Width in CSS pixels.
    #[schemars(range(min = 1, max = BROWSER_MAX_VIEWPORT_PX))]
    pub width: u32,
    /// Height in CSS pixels.
    #[schemars(range(min = 1, max = BROWSER_MAX_VIEWPORT_PX))]
    pub height: u32,
}

impl Default for Viewport {
    fn default() -> Self {
        Self { width: DEFAULT_VIEWPORT_WIDTH, height: DEFAULT_VIEWPORT_HEIGHT }
    }
}

impl Viewport {
    /// Checks each side is within 1..=`BROWSER_MAX_VIEWPORT_PX`; the error names `width` or
    /// `height` (place it with [`NimbusError::within`]).
    pub fn validate(&self) -> Result<(), NimbusError> {
        for (field, value) in [("width", self.width), ("height", self.height)] {
            if !(1..=BROWSER_MAX_VIEWPORT_PX).contains(&value) {
                return Err(NimbusError::invalid_input(
                    field,
                    format!("must be between 1 and {BROWSER_MAX_VIEWPORT_PX} pixels (got {value})"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(viewport: Viewport) -> Option<String> {
        let error = viewport.validate().err()?;
        error.detail.and_then(|d| d["field"].as_str().map(str::to_owned))
    }

    #[test]
    fn each_side_is_bounded() {
        assert_eq!(field(Viewport::default()), None);
        assert_eq!(field(Viewport { width: 1, height: BROWSER_MAX_VIEWPORT_PX }), None);
        assert_eq!(field(Viewport { width: 0, height: 720 }).as_deref(), Some("width"));
        assert_eq!(field(Viewport { width: 1280, height: BROWSER_MAX_VIEWPORT_PX + 1 }).as_deref(), Some("height"));
    }

    #[test]
    fn the_schema_states_the_limit() {
        let schema = serde_json::to_value(schemars::schema_for!(Viewport)).expect("a schema");
        assert_eq!(schema["properties"]["width"]["maximum"], BROWSER_MAX_VIEWPORT_PX);
        assert_eq!(schema["properties"]["height"]["minimum"], 1);
        assert!(serde_json::from_str::<Viewport>(r#"{"width": 1, "height": 2, "scale": 1}"#).is_err());
    }
}
