//! The sandbox's default seccomp profile, compiled in the supervisor with `seccompiler`.
//!
//! Default allow; denied with EPERM: mount and namespace syscalls (the new mount API included),
//! module loading, kexec, bpf, perf, keyrings, userfaultfd, handle-based opens, `io_uring`, swap,
//! reboot, accounting, syslog, quotas, clock setting, raw I/O ports, ptrace, cross-process memory
//! and descriptor access, and `clone` with any `CLONE_NEW*` flag. `clone3` answers ENOSYS so libc
//! falls back to `clone` (whose flags a filter can inspect). Every other ABI is refused: a
//! foreign architecture (i386 through `int 0x80`) kills the process (seccompiler's architecture
//! check), and on x86_64 every x32 syscall number (bit 30 set) answers EPERM, so the x32 twins of
//! the denied calls are denied too.
//!
//! The filters are installed in the sandbox's init (PID 1) before it starts the main process,
//! so the init and everything it forks carry them, and again in every exec'd process and exec
//! probe (which libcontainer starts from outside the init).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
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
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_fanotify_init,
];

/// The x32 ABI marks its syscall numbers with this bit (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

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
    #[cfg(target_arch = "x86_64")]
    programs.push(x32_filter());
    Ok(programs)
}

/// EPERM for every x32 syscall number. seccompiler keys rules by exact number, so this one is
/// written out: load the number, compare it with the x32 bit, answer. The architecture is
/// checked by the filters above (the kernel applies the strictest answer of all filters).
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    // From linux/filter.h and linux/seccomp.h; offset 0 of `seccomp_data` is the number.
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
    const BPF_RET_K: u16 = 0x06;
    let statement = |code: u16, k: u32| sock_filter { code, jt: 0, jf: 0, k };
    vec![
        statement(BPF_LD_W_ABS, 0),
        // x32 → the next instruction; otherwise skip it.
        sock_filter { code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
        statement(BPF_RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        statement(BPF_RET_K, libc::SECCOMP_RET_ALLOW),
    ]
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
        assert_eq!(filters.len(), if cfg!(target_arch = "x86_64") { 3 } else { 2 });
        assert!(filters.iter().all(|p| !p.is_empty()));
    }
}
