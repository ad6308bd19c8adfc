//! The operations on pages themselves: `open`, `goto`, `close`, `pages`.

use nimbus_core::NimbusError;
use nimbus_core::limits::BROWSER_MAX_PAGES_PER_SESSION;

use super::answers::{CloseAnswer, GotoAnswer, PageInfo, PagesAnswer};
use super::body::{GotoBody, OpenBody, PageBody, PagesBody, navigable, timeout_ms};
use super::deadline::Deadline;
use super::errors::too_many_pages;
use super::navigate::navigate;
use super::op::{Op, locate, ordered_pages};
use super::pages::SessionPages;
use super::target::{Outcome, close_page, close_quietly, create_page};
use crate::cdp::{CdpError, Connection};

/// The main response's HTTP status, from the document's navigation timing entry.
const STATUS: &str = "function () {
  const entry = performance.getEntriesByType('navigation')[0];
  return entry && entry.responseStatus > 0 ? entry.responseStatus : null;
}";

/// The HTTP status of the page's document at `url`: only a document that came over HTTP has
/// one (Chromium reports 200 for `data:` too); none when the page does not answer.
async fn status(op: &Op<'_>, url: &str) -> Option<u16> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    match op.page().run_in_utility(STATUS, &[], op.remaining()).await {
        Ok(Outcome::Value(status)) => status.as_u64().and_then(|s| u16::try_from(s).ok()),
        _ => None,
    }
}

/// `open`: a new page in the session's context (its own viewport or the session's), loading
/// `url` when given. A page whose load fails is closed again.
pub(crate) async fn open(conn: &Connection, pages: &SessionPages, body: OpenBody) -> Result<PageInfo, NimbusError> {
    let deadline = Deadline::after("open", timeout_ms(body.timeout_ms)?);
    if let Some(viewport) = &body.viewport {
        viewport.validate().map_err(|error| error.within("viewport"))?;
    }
    if let Some(url) = &body.url {
        navigable("url", url)?;
    }
    let viewport = body.viewport.unwrap_or(pages.viewport());
    let target = {
        let _gate =
            tokio::time::timeout_at(deadline.instant(), pages.open_gate()).await.map_err(|_| deadline.expired())?;
        let open = ordered_pages(conn, pages, &deadline).await?.len();
        if open >= BROWSER_MAX_PAGES_PER_SESSION {
            return Err(too_many_pages(open));
        }
        let created = create_page(conn, pages.context_id(), viewport, deadline.remaining()).await;
        let target = created.map_err(|error| match error {
            CdpError::Timeout { .. } => deadline.expired(),
            other => other.into_nimbus(),
        })?;
        pages.opened(&target);
        target
    };
    let loaded = async {
        let op = Op::attach(conn, pages, &target, deadline.clone()).await?;
        if let Some(url) = &body.url {
            navigate(op.page(), url, body.wait_until.unwrap_or_default(), op.deadline())
                .await
                .map_err(|error| op.navigation_failed(url, error))?;
        }
        let location = op.location().await?;
        Ok::<_, NimbusError>(PageInfo { page_id: target.clone(), url: location.url, title: location.title })
    };
    match loaded.await {
        Ok(page) => Ok(page),
        Err(error) => {
            close_quietly(conn, &target).await;
            pages.forget(&target);
            Err(error)
        }
    }
}

/// `goto`: loads `url` in the page and waits for `waitUntil`.
pub(crate) async fn goto(conn: &Connection, pages: &SessionPages, body: GotoBody) -> Result<GotoAnswer, NimbusError> {
    let deadline = Deadline::after("goto", timeout_ms(body.timeout_ms)?);
    navigable("url", &body.url)?;
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    navigate(op.page(), &body.url, body.wait_until.unwrap_or_default(), op.deadline())
        .await
        .map_err(|error| op.navigation_failed(&body.url, error))?;
    let location = op.location().await?;
    let status = status(&op, &location.url).await;
    Ok(GotoAnswer { page_id: op.page_id().to_owned(), url: location.url, title: location.title, status })
}

/// `close`: closes the page and answers once Chromium has destroyed it (so `pages` no longer
/// lists it).
pub(crate) async fn close(conn: &Connection, pages: &SessionPages, body: PageBody) -> Result<CloseAnswer, NimbusError> {
    let deadline = Deadline::after("close", timeout_ms(body.timeout_ms)?);
    let info = locate(conn, pages, body.page_id.as_deref(), &deadline).await?;
    let target = info.target_id;
    let closed = close_page(conn, &target, deadline.remaining()).await;
    pages.forget(&target);
    closed.map_err(|error| match error {
        CdpError::Timeout { .. } => deadline.expired(),
        other => other.into_nimbus(),
    })?;
    Ok(CloseAnswer { page_id: target, closed: true })
}

/// `pages`: the session's open pages in its order, with the tabs' URLs and titles.
pub(crate) async fn list(
    conn: &Connection,
    pages: &SessionPages,
    _body: PagesBody,
) -> Result<PagesAnswer, NimbusError> {
    let deadline = Deadline::after("pages", nimbus_core::limits::BROWSER_DEFAULT_TIMEOUT_MS);
    let ordered = ordered_pages(conn, pages, &deadline).await?;
    Ok(PagesAnswer {
        pages: ordered
            .into_iter()
            .map(|info| PageInfo { page_id: info.target_id, url: info.url, title: info.title })
            .collect(),
    })
}
