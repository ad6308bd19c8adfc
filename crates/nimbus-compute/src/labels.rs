//! Labels of agents resources (conventions §9): at most [`MAX_LABELS`] pairs; keys of
//! 1..=[`MAX_LABEL_KEY_CHARS`] characters from `[A-Za-z0-9._/-]` starting with a letter or digit;
//! values of up to [`MAX_LABEL_VALUE_CHARS`] characters without control characters.

use std::collections::BTreeMap;

use nimbus_core::NimbusError;
use nimbus_core::limits::{MAX_LABEL_KEY_CHARS, MAX_LABEL_VALUE_CHARS, MAX_LABELS};

/// Validated labels, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// Checks labels; the error names the offending field (`labels.<key>`).
pub fn validate(labels: &Labels) -> Result<(), NimbusError> {
    if labels.len() > MAX_LABELS {
        return Err(NimbusError::invalid_input(
            "labels",
            format!("has {} pairs; at most {MAX_LABELS} are allowed", labels.len()),
        ));
    }
    for (key, value) in labels {
        validate_key(key).map_err(|reason| NimbusError::invalid_input(format!("labels.{key}"), reason))?;
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            return Err(NimbusError::invalid_input(
                format!("labels.{key}"),
                format!("value is longer than {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(NimbusError::invalid_input(
                format!("labels.{key}"),
                "value must not contain control characters",
            ));
        }
    }
    Ok(())
}

/// Checks a label key alone (also used for `labelKey` filters).
pub fn validate_key(key: &str) -> Result<(), String> {
    let count = key.chars().count();
    if count == 0 || count > MAX_LABEL_KEY_CHARS {
        return Err(format!("key must be 1 to {MAX_LABEL_KEY_CHARS} characters"));
    }
    if !key.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("key must start with a letter or digit".into());
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) {
        return Err("key may contain only letters, digits, '.', '_', '/' and '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn labels_follow_the_contract() {
        assert!(validate(&labels(&[("purpose", "quickstart"), ("a.b/c-d_e", ""), ("9x", "v")])).is_ok());
        for bad in [("", "v"), ("-x", "v"), ("has space", "v"), ("ü", "v")] {
            let err = validate(&labels(&[bad])).expect_err(bad.0);
            assert_eq!(err.code.as_str(), "op.invalid_input");
        }
        assert!(validate(&labels(&[("k", "line\nbreak")])).is_err());
        assert!(validate(&labels(&[("k", &"v".repeat(MAX_LABEL_VALUE_CHARS + 1))])).is_err());
        assert!(validate(&labels(&[(&"k".repeat(MAX_LABEL_KEY_CHARS + 1), "v")])).is_err());
        let many: Labels = (0..=MAX_LABELS).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate(&many).is_err());
    }
}
