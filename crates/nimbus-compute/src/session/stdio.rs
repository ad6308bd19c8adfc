//! Attaching to a channel or process, and the `stdio` channel's input and resize
//! (sessions.md §5–§6).

use nimbus_core::NimbusError;
use nimbus_core::limits::SESSION_MAX_INPUT_BYTES;
use nimbus_sandbox::backend::ProcessRef;
use serde_json::json;

use super::Sessions;
use super::attach::{AttachKey, Attached};
use super::target::Channel;
use crate::blocking;

/// What the `opened` frame of an attachment reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The channel (`exec` for a process).
    pub channel: Channel,
    /// The target's pinned execution generation.
    pub target_generation: u64,
    /// The process, for process streams.
    pub process_id: Option<String>,
}

/// 413 when one input call carries more than [`SESSION_MAX_INPUT_BYTES`].
pub(super) fn check_input(data: &[u8]) -> Result<(), NimbusError> {
    if data.len() > SESSION_MAX_INPUT_BYTES {
        return Err(NimbusError::payload_too_large(SESSION_MAX_INPUT_BYTES, Some(data.len())));
    }
    Ok(())
}

fn only_stdio(channel: Channel) -> Result<(), NimbusError> {
    if channel == Channel::Stdio {
        return Ok(());
    }
    let hint = match channel {
        Channel::Exec => "exec output streams from /processes/{processId}/stream",
        Channel::Files => "files are read and written through /files",
        _ => "this channel has no stream",
    };
    Err(NimbusError::invalid_input("channel", format!("only `stdio` streams here; {hint}")))
}

impl Sessions {
    /// Attaches a client to the `stdio` channel or to one of the session's processes: replayed
    /// output, then live output, then the ending. Takes over the slot of a previous attachment.
    pub async fn attach(
        &self,
        tenant: Option<&str>,
        id: &str,
        key: AttachKey,
    ) -> Result<(Opened, Attached), NimbusError> {
        let (channel, process) = match &key {
            AttachKey::Channel(channel) => (*channel, ProcessRef::Main),
            AttachKey::Process(pid) => (Channel::Exec, ProcessRef::Exec(pid.clone())),
        };
        let (_, bound) = self.bind(tenant, id, channel).await?;
        match &key {
            AttachKey::Channel(channel) => only_stdio(*channel)?,
            AttachKey::Process(pid) => {
                self.owned_process(&bound, pid).await?;
            }
        }
        let backend = bound.backend.clone();
        let sandbox_id = bound.sandbox.id.clone();
        let source = blocking(move || backend.attach(&sandbox_id, &process)).await??;
        let opened = Opened {
            channel,
            target_generation: bound.session.snapshot.generation(),
            process_id: match &key {
                AttachKey::Process(pid) => Some(pid.clone()),
                AttachKey::Channel(_) => None,
            },
        };
        Ok((opened, self.live.start(&bound.session.id, key, source)))
    }

    /// Writes to the main process's stdin through a channel; needs a live attachment to it
    /// (409 `no_attachment`).
    pub async fn channel_input(
        &self,
        tenant: Option<&str>,
        id: &str,
        channel: Channel,
        data: Vec<u8>,
        eof: bool,
    ) -> Result<(), NimbusError> {
        let (_, bound) = self.bind(tenant, id, channel).await?;
        only_stdio(channel)?;
        check_input(&data)?;
        if !self.live.has(&bound.session.id, &AttachKey::Channel(channel)) {
            return Err(NimbusError::conflict(
                "no_attachment",
                format!("the `{}` channel has no live attachment; attach to its stream first", channel.as_str()),
                json!({}),
            ));
        }
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        blocking(move || backend.input(&sandbox_id, &ProcessRef::Main, &data, eof)).await?
    }

    /// Resizes the main process's pty; 409 `not_a_tty` when the sandbox has none.
    pub async fn stdio_resize(&self, tenant: Option<&str>, id: &str, cols: u16, rows: u16) -> Result<(), NimbusError> {
        let (_, bound) = self.bind(tenant, id, Channel::Stdio).await?;
        if !bound.sandbox.process.terminal {
            return Err(NimbusError::conflict(
                "not_a_tty",
                "the sandbox was not started with `terminal: true`",
                json!({}),
            ));
        }
        let (backend, sandbox_id) = (bound.backend.clone(), bound.sandbox.id.clone());
        blocking(move || backend.resize(&sandbox_id, &ProcessRef::Main, cols, rows)).await?
    }
}
