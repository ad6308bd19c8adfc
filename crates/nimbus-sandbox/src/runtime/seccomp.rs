//! The sandbox's default seccomp profile, compiled in the supervisor with `seccompiler`.
//!
//! Default allow; denied with EPERM: mount and namespace syscalls, module loading, kexec, bpf,
//! perf, keyrings, userfaultfd, handle-based opens, swap, reboot, accounting, syslog, quotas,
//! clock setting, raw I/O ports, ptrace and cross-process memory access, and `clone` with any
//! `CLONE_NEW*` flag. `clone3` answers ENOSYS so libc falls back to `clone` (whose flags a
//! filter can inspect).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// Syscalls denied with EPERM outright.
const DENIED: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lookup_dcookie,
];

/// The namespace-creating clone flags.
const CLONE_NEW_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|err| format!("seccomp: unsupported architecture: {err}"))
}

/// The compiled filters, to be installed in order (the kernel applies all of them).
pub fn default_filters() -> Result<Vec<BpfProgram>, String> {
    let arch = arch()?;
    let err = |e: seccompiler::BackendError| format!("seccomp: {e}");

    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for &flag in CLONE_NEW_FLAGS {
        let condition =
            SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag).map_err(err)?;
        clone_rules.push(SeccompRule::new(vec![condition]).map_err(err)?);
    }
    deny.insert(libc::SYS_clone, clone_rules);
    let eperm =
        SeccompFilter::new(deny, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch).map_err(err)?;

    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let enosys = SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch)
        .map_err(err)?;

    let mut programs = Vec::new();
    for filter in [eperm, enosys] {
        programs.push(BpfProgram::try_from(filter).map_err(err)?);
    }
    Ok(programs)
}

/// Installs `filters` on the calling thread (requires `no_new_privs` or CAP_SYS_ADMIN).
pub fn apply(filters: &[BpfProgram]) -> Result<(), String> {
    for program in filters {
        seccompiler::apply_filter(program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles() {
        let filters = default_filters().expect("filters compile");
        assert_eq!(filters.len(), 2);
        assert!(filters.iter().all(|p| !p.is_empty()));
    }
}
