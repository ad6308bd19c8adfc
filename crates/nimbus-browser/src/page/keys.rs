//! Key definitions for `press`: what `Input.dispatchKeyEvent` needs (`key`, `code`,
//! `windowsVirtualKeyCode`, `text`) for named keys, single characters of a US layout, and
//! modifier chords (`Control+a`, `Shift+Tab`).

/// One key as DevTools dispatches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// `KeyboardEvent.key`: `Enter`, `a`, `A`, `!`.
    pub key: String,
    /// `KeyboardEvent.code`: the physical key (`Enter`, `KeyA`, `Digit1`); empty when a
    /// character has none on a US layout.
    pub code: &'static str,
    /// The Windows virtual key code Chromium's input pipeline reads.
    pub key_code: u32,
    /// The text the key inserts, if any.
    pub text: Option<String>,
    /// `KeyboardEvent.location`: 1 for the left modifiers, else 0.
    pub location: u32,
}

/// A key pressed with modifiers held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chord {
    /// The modifier keys, in the order they go down.
    pub modifiers: Vec<Key>,
    /// The key.
    pub key: Key,
}

impl Chord {
    /// DevTools' modifier bit mask of the chord's modifiers (Alt 1, Control 2, Meta 4, Shift 8).
    pub(crate) fn modifier_bits(&self) -> u32 {
        self.modifiers.iter().map(|m| modifier_bit(&m.key)).fold(0, |bits, bit| bits | bit)
    }
}

/// DevTools' bit for a modifier key name (0 for other keys).
pub(crate) fn modifier_bit(key: &str) -> u32 {
    match key {
        "Alt" => 1,
        "Control" => 2,
        "Meta" => 4,
        "Shift" => 8,
        _ => 0,
    }
}

/// Named keys: (name, code, key code, text).
const NAMED: &[(&str, &str, u32, Option<&str>)] = &[
    ("Enter", "Enter", 13, Some("\r")),
    ("Tab", "Tab", 9, None),
    ("Escape", "Escape", 27, None),
    ("Backspace", "Backspace", 8, None),
    ("Delete", "Delete", 46, None),
    ("Insert", "Insert", 45, None),
    ("Home", "Home", 36, None),
    ("End", "End", 35, None),
    ("PageUp", "PageUp", 33, None),
    ("PageDown", "PageDown", 34, None),
    ("ArrowLeft", "ArrowLeft", 37, None),
    ("ArrowUp", "ArrowUp", 38, None),
    ("ArrowRight", "ArrowRight", 39, None),
    ("ArrowDown", "ArrowDown", 40, None),
    ("Space", "Space", 32, Some(" ")),
    ("CapsLock", "CapsLock", 20, None),
    ("ContextMenu", "ContextMenu", 93, None),
    ("F1", "F1", 112, None),
    ("F2", "F2", 113, None),
    ("F3", "F3", 114, None),
    ("F4", "F4", 115, None),
    ("F5", "F5", 116, None),
    ("F6", "F6", 117, None),
    ("F7", "F7", 118, None),
    ("F8", "F8", 119, None),
    ("F9", "F9", 120, None),
    ("F10", "F10", 121, None),
    ("F11", "F11", 122, None),
    ("F12", "F12", 123, None),
];

/// Modifier keys: (name, code, key code).
const MODIFIERS: &[(&str, &str, u32)] =
    &[("Shift", "ShiftLeft", 16), ("Control", "ControlLeft", 17), ("Alt", "AltLeft", 18), ("Meta", "MetaLeft", 91)];

/// Other spellings of modifier names.
const MODIFIER_ALIASES: &[(&str, &str)] = &[
    ("ctrl", "Control"),
    ("controlormeta", "Control"),
    ("cmd", "Meta"),
    ("command", "Meta"),
    ("super", "Meta"),
    ("option", "Alt"),
];

/// Printable characters of a US layout: (unshifted, shifted, code, key code).
const PUNCTUATION: &[(char, char, &str, u32)] = &[
    ('1', '!', "Digit1", 49),
    ('2', '@', "Digit2", 50),
    ('3', '#', "Digit3", 51),
    ('4', '$', "Digit4", 52),
    ('5', '%', "Digit5", 53),
    ('6', '^', "Digit6", 54),
    ('7', '&', "Digit7", 55),
    ('8', '*', "Digit8", 56),
    ('9', '(', "Digit9", 57),
    ('0', ')', "Digit0", 48),
    ('-', '_', "Minus", 189),
    ('=', '+', "Equal", 187),
    ('[', '{', "BracketLeft", 219),
    (']', '}', "BracketRight", 221),
    ('\\', '|', "Backslash", 220),
    (';', ':', "Semicolon", 186),
    ('\'', '"', "Quote", 222),
    (',', '<', "Comma", 188),
    ('.', '>', "Period", 190),
    ('/', '?', "Slash", 191),
    ('`', '~', "Backquote", 192),
    (' ', ' ', "Space", 32),
];

/// `KeyA` … `KeyZ`.
const LETTER_CODES: [&str; 26] = [
    "KeyA", "KeyB", "KeyC", "KeyD", "KeyE", "KeyF", "KeyG", "KeyH", "KeyI", "KeyJ", "KeyK", "KeyL", "KeyM", "KeyN",
    "KeyO", "KeyP", "KeyQ", "KeyR", "KeyS", "KeyT", "KeyU", "KeyV", "KeyW", "KeyX", "KeyY", "KeyZ",
];

/// Parses a key as `press` takes it: a key name or one character, optionally after
/// `+`-separated modifiers (`Control+Shift+ArrowLeft`, `Control++`). Names of more than one
/// character match regardless of case. The error says what is wrong.
pub(crate) fn parse(spec: &str) -> Result<Chord, String> {
    if spec.is_empty() {
        return Err("must not be empty".into());
    }
    let (modifier_part, key_part) = if spec == "+" {
        (None, "+")
    } else if let Some(prefix) = spec.strip_suffix("++") {
        (Some(prefix), "+")
    } else {
        match spec.rsplit_once('+') {
            Some((prefix, key)) => (Some(prefix), key),
            None => (None, spec),
        }
    };
    let mut modifiers = Vec::new();
    if let Some(modifier_part) = modifier_part {
        for name in modifier_part.split('+') {
            let modifier = modifier_key(name)
                .ok_or_else(|| format!("has {name:?} where a modifier (Control, Shift, Alt, Meta) belongs"))?;
            if !modifiers.iter().any(|m: &Key| m.key == modifier.key) {
                modifiers.push(modifier);
            }
        }
    }
    let shift = modifiers.iter().any(|m| m.key == "Shift");
    let mut key = single_key(key_part, shift).ok_or_else(|| {
        format!("{key_part:?} is not a key: name one (Enter, Tab, Escape, ArrowDown, F5, …) or give one character")
    })?;
    // With Control, Alt or Meta held a key is a shortcut and inserts nothing.
    if modifiers.iter().any(|m| matches!(m.key.as_str(), "Control" | "Alt" | "Meta")) {
        key.text = None;
    }
    Ok(Chord { modifiers, key })
}

fn modifier_key(name: &str) -> Option<Key> {
    let lower = name.to_ascii_lowercase();
    let canonical = MODIFIER_ALIASES.iter().find(|(alias, _)| *alias == lower).map(|(_, to)| *to);
    let (name, code, key_code) = MODIFIERS
        .iter()
        .find(|(modifier, _, _)| Some(*modifier) == canonical || modifier.eq_ignore_ascii_case(name))?;
    Some(Key { key: (*name).to_owned(), code, key_code: *key_code, text: None, location: 1 })
}

fn single_key(name: &str, shift: bool) -> Option<Key> {
    let mut chars = name.chars();
    let (first, rest) = (chars.next()?, chars.next());
    if rest.is_none() {
        return Some(character(first, shift));
    }
    if let Some(modifier) = modifier_key(name) {
        return Some(modifier);
    }
    let (name, code, key_code, text) = NAMED.iter().find(|(named, ..)| named.eq_ignore_ascii_case(name))?;
    let key = if *name == "Space" { " " } else { name };
    Some(Key { key: key.to_owned(), code, key_code: *key_code, text: text.map(str::to_owned), location: 0 })
}

/// One character's key on a US layout; a character the layout lacks is typed as itself with no
/// physical key.
fn character(c: char, shift: bool) -> Key {
    if c.is_ascii_alphabetic() {
        let index = usize::from(c.to_ascii_uppercase() as u8 - b'A');
        let shown = if shift { c.to_ascii_uppercase() } else { c };
        return Key {
            key: shown.to_string(),
            code: LETTER_CODES[index],
            key_code: 65 + index as u32,
            text: Some(shown.to_string()),
            location: 0,
        };
    }
    if let Some((_, shifted, code, key_code)) =
        PUNCTUATION.iter().find(|(plain, shifted, ..)| *plain == c || *shifted == c)
    {
        let shown = if shift { *shifted } else { c };
        return Key { key: shown.to_string(), code, key_code: *key_code, text: Some(shown.to_string()), location: 0 };
    }
    if c == '\r' || c == '\n' {
        return Key { key: "Enter".into(), code: "Enter", key_code: 13, text: Some("\r".into()), location: 0 };
    }
    let text = (!c.is_control()).then(|| c.to_string());
    Key { key: c.to_string(), code: "", key_code: 0, text, location: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: &str) -> Key {
        parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).key
    }

    #[test]
    fn named_keys() {
        let enter = key("Enter");
        assert_eq!(
            (enter.key.as_str(), enter.code, enter.key_code, enter.text.as_deref()),
            ("Enter", "Enter", 13, Some("\r"))
        );
        let tab = key("tab");
        assert_eq!((tab.key.as_str(), tab.code, tab.key_code, tab.text), ("Tab", "Tab", 9, None));
        assert_eq!(key("Escape").key_code, 27);
        assert_eq!(key("Backspace").key_code, 8);
        assert_eq!(key("ArrowDown").key_code, 40);
        assert_eq!(key("F5").key_code, 116);
        let space = key("Space");
        assert_eq!((space.key.as_str(), space.code, space.text.as_deref()), (" ", "Space", Some(" ")));
        assert_eq!(key(" ").code, "Space");
    }

    #[test]
    fn single_characters() {
        let a = key("a");
        assert_eq!((a.key.as_str(), a.code, a.key_code, a.text.as_deref()), ("a", "KeyA", 65, Some("a")));
        let big_z = key("Z");
        assert_eq!((big_z.key.as_str(), big_z.code, big_z.key_code), ("Z", "KeyZ", 90));
        assert_eq!((key("1").code, key("1").key_code), ("Digit1", 49));
        assert_eq!((key("!").code, key("!").key_code, key("!").key.as_str()), ("Digit1", 49, "!"));
        assert_eq!((key("/").code, key("?").code), ("Slash", "Slash"));
        assert_eq!((key("+").code, key("+").key.as_str()), ("Equal", "+"));
        let e = key("é");
        assert_eq!((e.code, e.key_code, e.text.as_deref()), ("", 0, Some("é")));
    }

    #[test]
    fn chords() {
        let select_all = parse("Control+a").expect("a chord");
        assert_eq!(select_all.modifier_bits(), 2);
        assert_eq!(select_all.key.text, None, "a shortcut inserts nothing");
        let back_tab = parse("Shift+Tab").expect("a chord");
        assert_eq!((back_tab.modifier_bits(), back_tab.key.key.as_str()), (8, "Tab"));
        let capital = parse("Shift+a").expect("a chord");
        assert_eq!((capital.key.key.as_str(), capital.key.text.as_deref()), ("A", Some("A")));
        let plus = parse("Control++").expect("a chord");
        assert_eq!((plus.modifier_bits(), plus.key.key.as_str()), (2, "+"));
        let many = parse("ctrl+Shift+Alt+Meta+ArrowLeft").expect("a chord");
        assert_eq!(many.modifier_bits(), 15);
        assert_eq!(parse("Shift").expect("a modifier alone").key.key_code, 16);
        assert!(parse("").is_err());
        assert!(parse("Hyper+a").is_err());
        assert!(parse("Control+").is_err());
        assert!(parse("NotAKey").is_err());
        assert!(parse("+a").is_err());
    }
}
