//! [`Op`]: one page operation in progress: the page it acts on (found in the session's order,
//! attached once and then reused), its deadline, and the mapping of DevTools failures to the
//! catalogued errors.

use std::time::Duration;

use nimbus_core::NimbusError;
use serde_json::Value;

use super::deadline::Deadline;
use super::errors::{navigation_failed, page_crashed, page_not_found};
use super::navigate::NavigateError;
use super::pages::SessionPages;
use super::target::{Location, Outcome, PageTarget, TargetInfo, context_pages};
use crate::cdp::{CdpError, Connection};

/// The session's open pages in its order, failing with the operation's timeout or
/// `browser.unavailable`.
pub(crate) async fn ordered_pages(
    conn: &Connection,
    pages: &SessionPages,
    deadline: &Deadline,
) -> Result<Vec<TargetInfo>, NimbusError> {
    let infos = context_pages(conn, pages.context_id(), deadline.remaining()).await.map_err(|error| match error {
        CdpError::Timeout { .. } => deadline.expired(),
        other => other.into_nimbus(),
    })?;
    Ok(pages.ordered(infos))
}

/// The page `page_id` names (or the session's default page), not attached.
pub(crate) async fn locate(
    conn: &Connection,
    pages: &SessionPages,
    page_id: Option<&str>,
    deadline: &Deadline,
) -> Result<TargetInfo, NimbusError> {
    let ordered = ordered_pages(conn, pages, deadline).await?;
    let found = match page_id {
        Some(id) => ordered.into_iter().find(|info| info.target_id == id),
        None => ordered.into_iter().next(),
    };
    found.ok_or_else(|| page_not_found(page_id))
}

/// One operation on one attached page.
#[derive(Debug)]
pub(crate) struct Op<'a> {
    page: PageTarget<'a>,
    deadline: Deadline,
}

impl<'a> Op<'a> {
    /// Finds the page (`page_id`, or the session's default), refuses a crashed one, and
    /// attaches to it (reusing the session attached by an earlier operation).
    pub(crate) async fn prepare(
        conn: &'a Connection,
        pages: &SessionPages,
        page_id: Option<&str>,
        deadline: Deadline,
    ) -> Result<Op<'a>, NimbusError> {
        let info = locate(conn, pages, page_id, &deadline).await?;
        Self::attach(conn, pages, &info.target_id, deadline).await
    }

    /// Attaches to `target_id` (a page of the session) for an operation.
    pub(crate) async fn attach(
        conn: &'a Connection,
        pages: &SessionPages,
        target_id: &str,
        deadline: Deadline,
    ) -> Result<Op<'a>, NimbusError> {
        if conn.is_crashed(target_id) {
            return Err(page_crashed(target_id));
        }
        if let Some(session) = pages.attached(conn.id(), target_id) {
            if conn.is_attached(&session) {
                return Ok(Op { page: PageTarget::existing(conn, target_id, &session), deadline });
            }
            pages.drop_session(target_id);
        }
        let page = PageTarget::attach(conn, target_id, deadline.remaining()).await;
        let page = page.map_err(|error| fail(error, target_id, &deadline))?;
        let kept = pages.remember(conn.id(), target_id, page.session_id());
        if kept != page.session_id() {
            page.detach().await;
            return Ok(Op { page: PageTarget::existing(conn, target_id, &kept), deadline });
        }
        Ok(Op { page, deadline })
    }

    /// The attached page.
    pub(crate) fn page(&self) -> &PageTarget<'a> {
        &self.page
    }

    /// The page's id.
    pub(crate) fn page_id(&self) -> &str {
        self.page.target_id()
    }

    /// The operation's deadline.
    pub(crate) fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// Time left.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.remaining()
    }

    /// Sends `method` on the page's session; failures are catalogued.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, NimbusError> {
        self.call_raw(method, params).await.map_err(|error| self.fail(error))
    }

    /// Sends `method` on the page's session, for callers that map some failures themselves.
    pub(crate) async fn call_raw(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.page.call(method, params, self.remaining()).await
    }

    /// The utility world's execution context.
    pub(crate) async fn utility_world(&self) -> Result<i64, NimbusError> {
        self.page.utility_world(self.remaining()).await.map_err(|error| self.fail(error))
    }

    /// Runs a function in the utility world (see [`PageTarget::run_in_utility`]).
    pub(crate) async fn run_in_utility(&self, declaration: &str, args: &[Value]) -> Result<Outcome, NimbusError> {
        self.page.run_in_utility(declaration, args, self.remaining()).await.map_err(|error| self.fail(error))
    }

    /// The page's current URL (from the browser).
    pub(crate) async fn url(&self) -> Result<String, NimbusError> {
        Ok(self.location().await?.url)
    }

    /// The page's current URL and title (from the browser).
    pub(crate) async fn location(&self) -> Result<Location, NimbusError> {
        self.page.location(self.remaining()).await.map_err(|error| self.fail(error))
    }

    /// The catalogued form of a DevTools failure during this operation.
    pub(crate) fn fail(&self, error: CdpError) -> NimbusError {
        fail(error, self.page_id(), &self.deadline)
    }

    /// The catalogued form of a navigation's failure.
    pub(crate) fn navigation_failed(&self, url: &str, error: NavigateError) -> NimbusError {
        match error {
            NavigateError::Failed(reason) => navigation_failed(url, &reason),
            NavigateError::Timeout => self.deadline.expired(),
            NavigateError::Cdp(error) => self.fail(error),
        }
    }
}

/// The catalogued form of a DevTools failure on page `page_id`.
fn fail(error: CdpError, page_id: &str, deadline: &Deadline) -> NimbusError {
    match error {
        CdpError::Timeout { .. } => deadline.expired(),
        CdpError::Crashed => page_crashed(page_id),
        CdpError::Detached => page_not_found(Some(page_id)),
        error if error.is_protocol("No target with given id") || error.is_protocol("Target closed") => {
            page_not_found(Some(page_id))
        }
        other => other.into_nimbus(),
    }
}
