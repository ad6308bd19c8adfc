//! The client → Chromium rules: what each command may do, what it is rewritten to, and what the
//! proxy must learn from its reply.
//!
//! On the browser session (no `sessionId`) the rules are an allow-list: the `Target` and
//! `Browser` commands a client library needs, and the cookie commands, each confined to owned
//! contexts and targets; any other browser-level command reaches beyond the session and is
//! refused. On an owned page session commands pass, except the domains whose handlers act on the
//! whole browser even there (`Browser`, `Target`, `Storage`'s cookies, which default to the
//! browser's default context, and `Tracing`, `SystemInfo`, …), which follow the same rules.
//! On both, any command naming a context, target or session (`browserContextId`, `targetId`,
//! `sessionId`) must name an owned one, and a navigation may not open Chromium's internal pages.

use serde_json::Value;

use super::message::Command;
use super::owned::Owned;
use crate::url;

/// What the proxy must do with a client's command.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Send it (as rewritten) to Chromium; the hook says what to learn from the reply.
    Forward(Hook),
    /// Answer the client with a `Not allowed` error.
    Refuse(String),
    /// `Browser.close`: answer `{}` and close the client's socket; Chromium keeps running.
    CloseBrowser,
    /// Ask Chromium something first, holding the command; decide again with the answer.
    Check(Check),
}

/// What the proxy learns from the reply to a forwarded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Hook {
    /// Nothing to learn.
    None,
    /// `Target.getTargets`: keep owned targets only.
    FilterTargets,
    /// `Target.getBrowserContexts`: list the created contexts only, and name the session's
    /// context as the default one.
    FilterContexts,
    /// `Target.createBrowserContext`: the new context is the socket's.
    ContextCreated,
    /// `Target.disposeBrowserContext` of a created context.
    ContextDisposed(String),
    /// `Target.createTarget` in this (owned) context.
    TargetCreated(String),
    /// `Target.attachToTarget` of an owned target, on this parent session.
    Attached { parent: Option<String> },
    /// `Browser.getWindowForTarget` of an owned target: the window is the socket's.
    WindowOf,
}

/// A question the proxy asks Chromium before deciding on a held command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Check {
    /// Which context is this target in? (`Target.getTargetInfo`)
    Target(String),
    /// How many pages do the owned contexts hold? (`Target.getTargets`, before a
    /// `Target.createTarget`)
    PageCount,
}

/// What earlier checks established for the command being decided again.
#[derive(Debug, Default, Clone)]
pub(super) struct Checked {
    /// The target Chromium showed to be in an owned context.
    pub target: Option<String>,
    /// The page count was under the cap.
    pub page_count: bool,
}

/// Decides on a client's command, rewriting it where a rule injects a parameter.
pub(super) fn decide(owned: &Owned, max_pages: usize, command: &mut Command, checked: &Checked) -> Verdict {
    match decide_inner(owned, max_pages, command, checked) {
        Ok(verdict) => verdict,
        Err(refusal) => Verdict::Refuse(refusal),
    }
}

fn decide_inner(owned: &Owned, max_pages: usize, command: &mut Command, checked: &Checked) -> Result<Verdict, String> {
    if let Some(session) = &command.session_id
        && !owned.owns_session(session)
    {
        return Err(format!("session {session} is not one of this connection's"));
    }
    let on_browser = command.session_id.is_none();
    let Some((domain, name)) = command.domain_and_name() else {
        return Err(format!("{} is not a DevTools method", command.method));
    };
    let hook = match domain {
        "Target" => target_rule(owned, max_pages, command)?,
        "Browser" => browser_rule(owned, command)?,
        "Storage" if matches!(name, "getCookies" | "setCookies" | "clearCookies") => {
            default_context(owned, command);
            Hook::None
        }
        "Tracing" | "SystemInfo" | "Extensions" | "PWA" => return Err(beyond(command)),
        "Memory" if matches!(name, "simulatePressureNotification" | "setPressureNotificationsSuppressed") => {
            return Err(beyond(command));
        }
        _ if on_browser => return Err(beyond(command)),
        _ => Hook::None,
    };
    names_owned_things(owned, command)?;
    if matches!(command.method.as_str(), "Target.createTarget" | "Page.navigate")
        && let Some(url) = command.params.get("url")
        && !url.as_str().is_some_and(url::allowed)
    {
        return Err(format!("{} may not open {url}", command.method));
    }
    if command.method == "Target.createTarget" && !checked.page_count {
        return Ok(Verdict::Check(Check::PageCount));
    }
    if command.method == "Browser.close" {
        return Ok(Verdict::CloseBrowser);
    }
    if let Some(target) = command.str_param("targetId")
        && !owned.owns_target(target)
        && checked.target.as_deref() != Some(target)
    {
        return Ok(Verdict::Check(Check::Target(target.to_owned())));
    }
    Ok(Verdict::Forward(hook))
}

fn beyond(command: &Command) -> String {
    format!("{} reaches beyond this session's browser context", command.method)
}

/// The `Target` domain, on any session.
fn target_rule(owned: &Owned, max_pages: usize, command: &mut Command) -> Result<Hook, String> {
    let name = command.method.strip_prefix("Target.").unwrap_or_default();
    match name {
        "setDiscoverTargets" | "closeTarget" | "activateTarget" | "getTargetInfo" | "detachFromTarget"
        | "autoAttachRelated" => Ok(Hook::None),
        "setAutoAttach" => {
            // Turning auto-attach off attaches nothing, flat or not.
            if command.params.get("autoAttach") != Some(&Value::Bool(false)) {
                flat_only(command)?;
            }
            Ok(Hook::None)
        }
        "attachToTarget" => {
            flat_only(command)?;
            if !owned.session_room() {
                return Err("too many attached sessions on this connection".into());
            }
            Ok(Hook::Attached { parent: command.session_id.clone() })
        }
        "getTargets" => Ok(Hook::FilterTargets),
        "getBrowserContexts" => Ok(Hook::FilterContexts),
        "createTarget" => {
            default_context(owned, command);
            let context = command.str_param("browserContextId").unwrap_or_default().to_owned();
            Ok(Hook::TargetCreated(context))
        }
        "createBrowserContext" => {
            for setting in ["proxyServer", "proxyBypassList"] {
                if command.params.get(setting).is_some_and(|value| !value.is_null()) {
                    return Err(format!("{setting}: pages reach the network only through the service's egress proxy"));
                }
            }
            if owned.created_or_creating() >= max_pages {
                return Err(format!("at most {max_pages} browser contexts per connection"));
            }
            // Chromium then disposes the context itself when this connection ends, whatever
            // happens to the proxy.
            command.params.insert("disposeOnDetach".into(), Value::Bool(true));
            Ok(Hook::ContextCreated)
        }
        "disposeBrowserContext" => match command.str_param("browserContextId") {
            Some(context) if owned.created_context(context) => Ok(Hook::ContextDisposed(context.to_owned())),
            _ => Err("only a browser context this connection created can be disposed".into()),
        },
        // A browser session for the client (Playwright's `newBrowserCDPSession`) would be
        // unconfined; non-flat sessions and exposing the protocol to a page would tunnel
        // commands past the proxy; remote locations make the browser connect elsewhere.
        _ => Err(format!("{} is not available on a confined connection", command.method)),
    }
}

/// Non-flat sessions carry their commands inside `Target.sendMessageToTarget`, where the proxy
/// would not see them: only flat ones are allowed.
fn flat_only(command: &Command) -> Result<(), String> {
    if command.params.get("flatten") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err(format!("{} needs flatten: true (only flat sessions are relayed)", command.method))
    }
}

/// The `Browser` domain, on any session: its handler is attached to page sessions too, and
/// there acts on the whole browser or its default context just as on the browser session.
fn browser_rule(owned: &Owned, command: &mut Command) -> Result<Hook, String> {
    let name = command.method.strip_prefix("Browser.").unwrap_or_default();
    match name {
        "getVersion" | "close" => Ok(Hook::None),
        "setDownloadBehavior" | "grantPermissions" | "resetPermissions" | "setPermission" | "cancelDownload" => {
            default_context(owned, command);
            Ok(Hook::None)
        }
        // On the browser session it must name its target: the session's own target is the
        // browser's.
        "getWindowForTarget" if command.session_id.is_none() && command.str_param("targetId").is_none() => {
            Err("Browser.getWindowForTarget needs a targetId here".into())
        }
        "getWindowForTarget" => Ok(Hook::WindowOf),
        "getWindowBounds" | "setWindowBounds" | "setContentsSize" => {
            match command.params.get("windowId").and_then(Value::as_i64) {
                Some(window) if owned.owns_window(window) => Ok(Hook::None),
                _ => Err(format!("{} of a window this connection does not own", command.method)),
            }
        }
        _ => Err(beyond(command)),
    }
}

/// Without a `browserContextId` these commands act on the browser's default context; for the
/// client the session's context is that default.
fn default_context(owned: &Owned, command: &mut Command) {
    let absent = command.params.get("browserContextId").is_none_or(Value::is_null);
    if absent {
        command.params.insert("browserContextId".into(), Value::String(owned.session_context().to_owned()));
    }
}

/// Any command naming a context or a session must name an owned one; a target id must be a
/// string (whether it is owned is checked last, as it may need to ask Chromium).
fn names_owned_things(owned: &Owned, command: &Command) -> Result<(), String> {
    match command.params.get("browserContextId") {
        None | Some(Value::Null) => {}
        Some(Value::String(context)) if owned.owns_context(context) => {}
        Some(other) => return Err(format!("browser context {other} is not this session's")),
    }
    match command.params.get("sessionId") {
        None | Some(Value::Null) => {}
        Some(Value::String(session)) if owned.owns_session(session) => {}
        Some(other) => return Err(format!("session {other} is not one of this connection's")),
    }
    match command.params.get("targetId") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(format!("target {other} is not this session's")),
    }
}
