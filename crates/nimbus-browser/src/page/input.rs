//! The operations that act on the page as a user would: `click`, `type`, `press`, `select`.

use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::{Value, json};

use super::answers::{ActionAnswer, SelectAnswer};
use super::body::{ClickBody, PressBody, SelectBody, TypeBody, element, timeout_ms};
use super::deadline::Deadline;
use super::element::{ElementTarget, resolve};
use super::errors::element_not_found;
use super::keys::{self, Chord, Key, modifier_bit};
use super::navigate::settle_after_input;
use super::op::Op;
use super::pages::SessionPages;
use crate::cdp::{CdpError, Connection, Events};

/// How often `click` looks again at an element that has no box yet (hidden, not laid out):
/// DevTools has no event for an element becoming visible.
const VISIBILITY_POLL: Duration = Duration::from_millis(100);

/// Puts the caret at the end of a text field's value, so typed text is appended.
const CARET_TO_END: &str = "function () {
  try {
    if (typeof this.value === 'string' && typeof this.setSelectionRange === 'function') {
      this.setSelectionRange(this.value.length, this.value.length);
    }
  } catch (e) {}
}";

/// Selects the options whose value (else label) is each of `values`, fires `input` and
/// `change`, and answers the values now selected, or what was wrong.
const SELECT: &str = "function (values) {
  if (this.localName !== 'select') return { error: 'notSelect', tag: String(this.localName) };
  const options = Array.from(this.options);
  const chosen = [];
  for (const value of values) {
    const option = options.find(o => o.value === value) || options.find(o => o.label === value || o.text.trim() === value);
    if (!option) return { error: 'noOption', value };
    chosen.push(option);
  }
  if (!this.multiple && chosen.length > 1) return { error: 'notMultiple' };
  for (const option of options) option.selected = chosen.includes(option);
  this.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
  this.dispatchEvent(new Event('change', { bubbles: true }));
  return { selected: options.filter(o => o.selected).map(o => o.value) };
}";

fn required(target: Option<ElementTarget>) -> Result<ElementTarget, NimbusError> {
    target.ok_or_else(|| NimbusError::invalid_input("ref", "is required (or `selector`)"))
}

/// `click`: scrolls the element into view and clicks the centre of its box with real mouse
/// events; a navigation the click starts is waited for until it commits.
pub(crate) async fn click(
    conn: &Connection,
    pages: &SessionPages,
    body: ClickBody,
) -> Result<ActionAnswer, NimbusError> {
    let deadline = Deadline::after("click", timeout_ms(body.timeout_ms)?);
    let target = required(element(body.element_ref.as_deref(), body.selector.as_deref(), true)?)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let object = resolve(&op, &target).await?;
    let (x, y) = clickable_point(&op, &target, &object).await?;
    let mut events = op.page().events();
    mouse(&op, "mouseMoved", x, y).await?;
    mouse(&op, "mousePressed", x, y).await?;
    mouse(&op, "mouseReleased", x, y).await?;
    settle(&op, &mut events).await?;
    Ok(ActionAnswer { page_id: op.page_id().to_owned(), url: op.url().await? })
}

/// The centre of the element's first box of at least one square pixel, once scrolled into
/// view; waits (polling) while it has none, until the deadline.
async fn clickable_point(op: &Op<'_>, target: &ElementTarget, object: &str) -> Result<(f64, f64), NimbusError> {
    loop {
        match op.call_raw("DOM.scrollIntoViewIfNeeded", json!({ "objectId": object })).await {
            Ok(_) => {}
            Err(error) if error.is_protocol("detached") || error.is_protocol("Could not find") => {
                return Err(element_not_found(target, "the element is no longer in the page"));
            }
            // No layout object (hidden): no box yet.
            Err(CdpError::Protocol { .. }) => {}
            Err(error) => return Err(op.fail(error)),
        }
        match op.call_raw("DOM.getContentQuads", json!({ "objectId": object })).await {
            Ok(answer) => {
                let quads = answer.get("quads").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                if let Some(point) = quads.iter().find_map(centre) {
                    return Ok(point);
                }
            }
            Err(error) if error.is_protocol("detached") || error.is_protocol("Could not find") => {
                return Err(element_not_found(target, "the element is no longer in the page"));
            }
            Err(CdpError::Protocol { .. }) => {}
            Err(error) => return Err(op.fail(error)),
        }
        if op.remaining().is_zero() {
            return Err(op.deadline().expired());
        }
        tokio::time::sleep(VISIBILITY_POLL.min(op.remaining())).await;
    }
}

/// The centre of a quad (`[x1, y1, … x4, y4]`) with an area of at least one square pixel.
fn centre(quad: &Value) -> Option<(f64, f64)> {
    let points: Vec<f64> = quad.as_array()?.iter().filter_map(Value::as_f64).collect();
    if points.len() != 8 || points.iter().any(|p| !p.is_finite()) {
        return None;
    }
    // The shoelace formula.
    let area = (0..4)
        .map(|i| {
            let j = (i + 1) % 4;
            points[2 * i] * points[2 * j + 1] - points[2 * j] * points[2 * i + 1]
        })
        .sum::<f64>()
        .abs()
        / 2.0;
    if area < 1.0 {
        return None;
    }
    let x = (points[0] + points[2] + points[4] + points[6]) / 4.0;
    let y = (points[1] + points[3] + points[5] + points[7]) / 4.0;
    Some((x.max(0.0), y.max(0.0)))
}

async fn mouse(op: &Op<'_>, kind: &str, x: f64, y: f64) -> Result<(), NimbusError> {
    let (button, buttons) = if kind == "mouseMoved" { ("none", 0) } else { ("left", 1) };
    let params = json!({ "type": kind, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": 1 });
    op.call("Input.dispatchMouseEvent", params).await.map(drop)
}

/// Waits for a navigation the input started (see [`settle_after_input`]).
async fn settle(op: &Op<'_>, events: &mut Events) -> Result<(), NimbusError> {
    settle_after_input(op.page(), events, op.deadline()).await.map_err(|error| op.navigation_failed("", error))
}

/// Focuses the element; one that cannot take focus is refused.
async fn focus(op: &Op<'_>, target: &ElementTarget, object: &str) -> Result<(), NimbusError> {
    match op.call_raw("DOM.focus", json!({ "objectId": object })).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_protocol("not focusable") => {
            Err(NimbusError::invalid_input(target.field(), "names an element that cannot take focus"))
        }
        Err(error) => Err(op.fail(error)),
    }
}

/// `type`: focuses the element and inserts `text` at the end of its value as typed input
/// (`input` events fire); `submit` presses Enter afterwards.
pub(crate) async fn type_text(
    conn: &Connection,
    pages: &SessionPages,
    body: TypeBody,
) -> Result<ActionAnswer, NimbusError> {
    let deadline = Deadline::after("type", timeout_ms(body.timeout_ms)?);
    let target = required(element(body.element_ref.as_deref(), body.selector.as_deref(), true)?)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let object = resolve(&op, &target).await?;
    focus(&op, &target, &object).await?;
    // A field whose script throws on selection keeps its caret: the text is still typed.
    let _caret = op.page().run_on(&object, CARET_TO_END, &[], true, op.remaining()).await.map_err(|e| op.fail(e))?;
    if !body.text.is_empty() {
        op.call("Input.insertText", json!({ "text": body.text })).await?;
    }
    if body.submit.unwrap_or(false) {
        let mut events = op.page().events();
        let enter = keys::parse("Enter").map_err(|_| NimbusError::internal())?;
        chord(&op, &enter).await?;
        settle(&op, &mut events).await?;
    }
    Ok(ActionAnswer { page_id: op.page_id().to_owned(), url: op.url().await? })
}

/// `press`: presses a key (with modifiers) on the focused element, or on the element named
/// after focusing it.
pub(crate) async fn press(
    conn: &Connection,
    pages: &SessionPages,
    body: PressBody,
) -> Result<ActionAnswer, NimbusError> {
    let deadline = Deadline::after("press", timeout_ms(body.timeout_ms)?);
    let pressed = keys::parse(&body.key).map_err(|reason| NimbusError::invalid_input("key", reason))?;
    let target = element(body.element_ref.as_deref(), body.selector.as_deref(), false)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    if let Some(target) = &target {
        let object = resolve(&op, target).await?;
        focus(&op, target, &object).await?;
    }
    let mut events = op.page().events();
    chord(&op, &pressed).await?;
    settle(&op, &mut events).await?;
    Ok(ActionAnswer { page_id: op.page_id().to_owned(), url: op.url().await? })
}

/// Presses a chord: modifiers down, the key down and up, modifiers up in reverse.
async fn chord(op: &Op<'_>, chord: &Chord) -> Result<(), NimbusError> {
    let mut held = 0;
    for modifier in &chord.modifiers {
        held |= modifier_bit(&modifier.key);
        key_event(op, "rawKeyDown", modifier, held).await?;
    }
    debug_assert_eq!(held, chord.modifier_bits());
    let down = if chord.key.text.is_some() { "keyDown" } else { "rawKeyDown" };
    key_event(op, down, &chord.key, chord.modifier_bits()).await?;
    key_event(op, "keyUp", &chord.key, chord.modifier_bits()).await?;
    for modifier in chord.modifiers.iter().rev() {
        held &= !modifier_bit(&modifier.key);
        key_event(op, "keyUp", modifier, held).await?;
    }
    Ok(())
}

async fn key_event(op: &Op<'_>, kind: &str, key: &Key, modifiers: u32) -> Result<(), NimbusError> {
    let mut params = json!({
        "type": kind,
        "modifiers": modifiers,
        "key": key.key,
        "code": key.code,
        "windowsVirtualKeyCode": key.key_code,
        "nativeVirtualKeyCode": key.key_code,
        "location": key.location,
        "autoRepeat": false,
        "isKeypad": false,
    });
    if kind == "keyDown"
        && let Some(text) = &key.text
    {
        params["text"] = Value::from(text.as_str());
        params["unmodifiedText"] = Value::from(text.as_str());
    }
    op.call("Input.dispatchKeyEvent", params).await.map(drop)
}

/// `select`: selects options of a `<select>` by value or label and fires `input` and `change`.
pub(crate) async fn select(
    conn: &Connection,
    pages: &SessionPages,
    body: SelectBody,
) -> Result<SelectAnswer, NimbusError> {
    let deadline = Deadline::after("select", timeout_ms(body.timeout_ms)?);
    let target = required(element(body.element_ref.as_deref(), body.selector.as_deref(), true)?)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let object = resolve(&op, &target).await?;
    let outcome = op.page().run_on(&object, SELECT, &[json!(body.values)], true, op.remaining()).await;
    let answer = match outcome.map_err(|error| op.fail(error))? {
        Ok(answer) => answer,
        Err(exception) => {
            tracing::debug!(%exception, "select threw");
            return Err(element_not_found(&target, "the element is no longer in the page"));
        }
    };
    match answer.get("error").and_then(Value::as_str) {
        None => {}
        Some("notSelect") => {
            let tag = answer.get("tag").and_then(Value::as_str).unwrap_or("other");
            let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
            return Err(NimbusError::invalid_input(target.field(), format!("names a <{tag}> element, not a <select>")));
        }
        Some("noOption") => {
            let value = answer.get("value").and_then(Value::as_str).unwrap_or_default();
            return Err(element_not_found(&target, format!("the select has no option with value or label {value:?}")));
        }
        Some(_) => {
            return Err(NimbusError::invalid_input("values", "has more than one value, but the select takes one"));
        }
    }
    let selected = answer
        .get("selected")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(SelectAnswer { page_id: op.page_id().to_owned(), selected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_lands_in_the_centre_of_a_real_box() {
        assert_eq!(centre(&json!([10.0, 20.0, 30.0, 20.0, 30.0, 40.0, 10.0, 40.0])), Some((20.0, 30.0)));
        assert_eq!(centre(&json!([0, 0, 0.5, 0, 0.5, 0.5, 0, 0.5])), None, "under a square pixel");
        assert_eq!(centre(&json!([1, 2, 3])), None);
        assert_eq!(centre(&json!("quad")), None);
        assert_eq!(centre(&json!([-10, -10, 4, -10, 4, 4, -10, 4])), Some((0.0, 0.0)), "clamped into the page");
    }
}
