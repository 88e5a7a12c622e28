//! A [`Profile`] compiled to one classic BPF program that finds a call's verdict by binary
//! search over the call numbers.
//!
//! Why not seccompiler's compiler: it checks the allowed calls one after the other, so Docker's
//! profile became 1,608 instructions. The kernel translates and JITs every one of them when pid 1
//! installs the filter (0.75 ms of a start, `bench/README.md`), and a call late in the list runs
//! hundreds of comparisons each time a container makes it. Docker's ~300 allowed calls fall
//! into a few dozen runs of consecutive numbers, so here each run is a leaf of a balanced tree
//! of `jge` tests: 182 instructions for Docker's profile, and about 7 comparisons for any call.
//! The `clone3` `ENOSYS` answer is a leaf of the same tree, not a second filter.
//!
//! Pure: [`program`] returns the instructions; `run` (in tests) is an interpreter of the subset it uses,
//! so tests compare the program with [`Profile::verdict`] for every call number.

use super::{ArgCheck, Profile};

/// `AUDIT_ARCH_X86_64`: the only architecture the program accepts.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// Offsets in `struct seccomp_data`: the call number, the architecture, the first argument's
/// low and high halves (x86-64 is little-endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LO: u32 = 16;
const ARG0_HI: u32 = 20;

// Classic BPF opcodes (`linux/filter.h`, `linux/bpf_common.h`).
/// `BPF_LD | BPF_W | BPF_ABS`.
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`, then `JGT`, `JGE`, `JSET`.
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
/// `BPF_RET | BPF_K`.
const RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// `Seccomp::apply` hands the program to the kernel as libc's `sock_filter`.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());

/// What one call number gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Allow,
    Errno(i32),
    /// Allowed when its first argument passes one of the profile's checks for this number.
    Args(i64),
}

/// The program for `profile`: architecture check (anything but x86-64 kills the process, as
/// seccompiler's did), then the tree. An error only if a jump would not fit in classic BPF's
/// 8-bit offsets, which a profile of Docker's size never comes near.
pub fn program(profile: &Profile) -> Result<Vec<Insn>, String> {
    let mut e = Emitter::default();
    e.stmt(LD_W_ABS, ARCH);
    let kill = e.label();
    let go = e.label();
    e.jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, go, kill);
    e.bind(kill);
    e.stmt(RET_K, RET_KILL_PROCESS);
    e.bind(go);
    e.stmt(LD_W_ABS, NR);
    let runs = runs(profile);
    tree(&mut e, profile, &runs);
    e.finish()
}

/// The numbers from 0 up in runs of the same leaf: `(first number, leaf)`, each run lasting
/// until the next one's first number; the last run (`EPERM`) covers every number above, x32's
/// (`0x40000000` and up) and negative ones (which the kernel passes as large unsigned) included.
fn runs(profile: &Profile) -> Vec<(u32, Leaf)> {
    let leaf = |nr: i64| profile.verdict_leaf(nr).unwrap_or(Leaf::Errno(libc::EPERM));
    let top = profile
        .allowed
        .iter()
        .chain(profile.allowed_if.keys())
        .chain(std::iter::once(&libc::SYS_clone3))
        .copied()
        .max()
        .unwrap_or(0);
    let mut runs: Vec<(u32, Leaf)> = Vec::new();
    for nr in 0..=top + 1 {
        let l = leaf(nr);
        // Every argument-checked number is a run of its own.
        if runs
            .last()
            .is_none_or(|(_, prev)| *prev != l || matches!(l, Leaf::Args(_)))
        {
            runs.push((nr as u32, l));
        }
    }
    runs
}

impl Profile {
    /// [`Profile::verdict`] as a leaf, for numbers that are not `EPERM` whatever the arguments.
    /// Written apart from `verdict` on purpose: `verdict` stays the independent statement that
    /// the tests hold the compiled program to.
    fn verdict_leaf(&self, nr: i64) -> Option<Leaf> {
        if nr == libc::SYS_clone3 && self.clone3_enosys {
            Some(Leaf::Errno(libc::ENOSYS))
        } else if self.allowed.contains(&nr) {
            Some(Leaf::Allow)
        } else if self.allowed_if.contains_key(&nr) {
            Some(Leaf::Args(nr))
        } else {
            None
        }
    }
}

/// Emits the search over `runs` (sorted, the call number in the accumulator): split at the
/// middle run's first number, the lower half first (reached by falling through), the upper
/// half after it.
fn tree(e: &mut Emitter, profile: &Profile, runs: &[(u32, Leaf)]) {
    if let [(_, leaf)] = runs {
        return emit_leaf(e, profile, *leaf);
    }
    let mid = runs.len() / 2;
    let (low, high) = (e.label(), e.label());
    e.jump(JMP_JGE_K, runs[mid].0, high, low);
    e.bind(low);
    tree(e, profile, &runs[..mid]);
    e.bind(high);
    tree(e, profile, &runs[mid..]);
}

fn emit_leaf(e: &mut Emitter, profile: &Profile, leaf: Leaf) {
    match leaf {
        Leaf::Allow => e.stmt(RET_K, RET_ALLOW),
        Leaf::Errno(errno) => e.stmt(RET_K, RET_ERRNO | errno as u32),
        Leaf::Args(nr) => {
            // Each check allows or falls through to the next; none passing is EPERM.
            let allow = e.label();
            for check in &profile.allowed_if[&nr] {
                let next = e.label();
                emit_check(e, *check, allow, next);
                e.bind(next);
            }
            e.stmt(RET_K, RET_ERRNO | libc::EPERM as u32);
            e.bind(allow);
            e.stmt(RET_K, RET_ALLOW);
            // The accumulator held the argument; nothing after a leaf reads it.
        }
    }
}

/// A 64-bit check of the first argument, as two 32-bit halves: to `pass` or to `fail`.
fn emit_check(e: &mut Emitter, check: ArgCheck, pass: Label, fail: Label) {
    let v = match check {
        ArgCheck::Eq(v) | ArgCheck::Lt(v) | ArgCheck::Gt(v) | ArgCheck::NoneOf(v) => v,
    };
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    let low_half = e.label();
    e.stmt(LD_W_ABS, ARG0_HI);
    if let ArgCheck::NoneOf(_) = check {
        e.jump(JMP_JSET_K, hi, fail, low_half);
        e.bind(low_half);
        e.stmt(LD_W_ABS, ARG0_LO);
        return e.jump(JMP_JSET_K, lo, fail, pass);
    }
    // The high halves decide unless they are equal; then the low halves' test does.
    let (above, below, low_test, low_true, low_false) = match check {
        ArgCheck::Eq(_) => (fail, fail, JMP_JEQ_K, pass, fail),
        ArgCheck::Lt(_) => (fail, pass, JMP_JGE_K, fail, pass),
        ArgCheck::Gt(_) => (pass, fail, JMP_JGT_K, pass, fail),
        ArgCheck::NoneOf(_) => unreachable!("handled above"),
    };
    let not_above = e.label();
    e.jump(JMP_JGT_K, hi, above, not_above);
    e.bind(not_above);
    e.jump(JMP_JEQ_K, hi, low_half, below);
    e.bind(low_half);
    e.stmt(LD_W_ABS, ARG0_LO);
    e.jump(low_test, lo, low_true, low_false);
}

/// A place in the program, bound to an instruction index once emitted.
#[derive(Debug, Clone, Copy)]
struct Label(usize);

/// Instructions with symbolic forward jumps, resolved by [`Emitter::finish`].
#[derive(Default)]
struct Emitter {
    code: Vec<Insn>,
    /// Conditional jumps: instruction index, true and false targets.
    jumps: Vec<(usize, Label, Label)>,
    /// Instruction index of each label, once bound.
    labels: Vec<Option<usize>>,
}

impl Emitter {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.code.push(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }

    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.jumps.push((self.code.len(), jt, jf));
        self.stmt(code, k);
    }

    fn finish(mut self) -> Result<Vec<Insn>, String> {
        for (at, jt, jf) in std::mem::take(&mut self.jumps) {
            let offset = |l: Label| -> Result<u8, String> {
                let to = self.labels[l.0].ok_or("seccomp: a jump to nowhere")?;
                to.checked_sub(at + 1)
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or_else(|| format!("seccomp: a jump from {at} to {to} does not fit"))
            };
            let (t, f) = (offset(jt)?, offset(jf)?);
            self.code[at].jt = t;
            self.code[at].jf = f;
        }
        Ok(self.code)
    }
}

/// Runs `program` as the kernel would on a call (`nr`, `arch`, first argument `arg0`): the
/// value it returns. Only the instructions [`program`] emits; panics on anything else.
#[cfg(test)]
pub fn run(program: &[Insn], nr: u32, arch: u32, arg0: u64) -> u32 {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = program[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                acc = match i.k {
                    NR => nr,
                    ARCH => arch,
                    ARG0_LO => arg0 as u32,
                    ARG0_HI => (arg0 >> 32) as u32,
                    k => panic!("load of offset {k}"),
                }
            }
            RET_K => return i.k,
            code => {
                let taken = match code {
                    JMP_JEQ_K => acc == i.k,
                    JMP_JGT_K => acc > i.k,
                    JMP_JGE_K => acc >= i.k,
                    JMP_JSET_K => acc & i.k != 0,
                    c => panic!("opcode {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_proto::capabilities;

    fn expected(p: &Profile, nr: i64, arg0: u64) -> u32 {
        match p.verdict(nr, arg0) {
            Ok(()) => RET_ALLOW,
            Err(errno) => RET_ERRNO | errno as u32,
        }
    }

    /// First arguments around every value a check of `p` names, and a few others.
    fn args_of(p: &Profile) -> Vec<u64> {
        let mut args = vec![
            0,
            1,
            u64::MAX,
            u64::MAX - 1,
            1 << 32,
            (1 << 32) | 38,
            u32::MAX as u64,
        ];
        for check in p.allowed_if.values().flatten() {
            let v = match *check {
                ArgCheck::Eq(v) | ArgCheck::Lt(v) | ArgCheck::Gt(v) | ArgCheck::NoneOf(v) => v,
            };
            args.extend([v, v.wrapping_sub(1), v.wrapping_add(1), v | (1 << 40)]);
            // Each bit of a mask alone, in both halves.
            for bit in 0..64 {
                if v & (1 << bit) != 0 {
                    args.push(1 << bit);
                }
            }
        }
        args.sort_unstable();
        args.dedup();
        args
    }

    /// The program's answer is the profile's for every call number up to past the last one
    /// (and x32's and negative ones), with every argument near a checked value, for the default
    /// capabilities, all of them, none, and each capability added alone.
    #[test]
    fn the_program_answers_as_the_profile_for_every_call() {
        let mut sets: Vec<Vec<&str>> = vec![
            capabilities::effective(&[], &[]).unwrap(),
            capabilities::effective(&[capabilities::EVERY.to_string()], &[]).unwrap(),
            capabilities::effective(&[], &[capabilities::EVERY.to_string()]).unwrap(),
        ];
        for cap in capabilities::ALL {
            sets.push(
                capabilities::effective(&[cap.trim_start_matches("CAP_").to_string()], &[])
                    .unwrap(),
            );
        }
        for caps in sets {
            let p = Profile::docker_default(&caps);
            let prog = program(&p).unwrap();
            assert!(prog.len() < 300, "{} instructions for {caps:?}", prog.len());
            let args = args_of(&p);
            let numbers = (0..600i64).chain([
                0x4000_0000 | libc::SYS_getpid,
                0x4000_0000 | libc::SYS_clone3,
                -1,
                i64::from(i32::MAX),
            ]);
            for nr in numbers {
                for &a in &args {
                    assert_eq!(
                        run(&prog, nr as u32, AUDIT_ARCH_X86_64, a),
                        expected(&p, nr, a),
                        "call {nr} with {a:#x}, capabilities {caps:?}"
                    );
                }
            }
            // Any other architecture is killed, whatever the call.
            assert_eq!(
                run(&prog, libc::SYS_getpid as u32, 0x4000_0003, 0),
                RET_KILL_PROCESS
            );
        }
    }

    /// Each kind of check, 64 bits wide, against a straightforward reading of it.
    #[test]
    fn checks_compare_all_64_bits() {
        let values = [
            0u64,
            1,
            37,
            38,
            39,
            40,
            41,
            0xffff_ffff,
            1 << 32,
            (1 << 32) + 39,
            u64::MAX,
        ];
        for v in values {
            for check in [
                ArgCheck::Eq(v),
                ArgCheck::Lt(v),
                ArgCheck::Gt(v),
                ArgCheck::NoneOf(v),
            ] {
                let p = Profile {
                    allowed: Default::default(),
                    allowed_if: [(7, vec![check])].into(),
                    clone3_enosys: false,
                };
                let prog = program(&p).unwrap();
                for a in values
                    .iter()
                    .flat_map(|x| [*x, x.wrapping_add(1), x.wrapping_sub(1)])
                {
                    assert_eq!(
                        run(&prog, 7, AUDIT_ARCH_X86_64, a),
                        expected(&p, 7, a),
                        "{check:?} on {a:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn docker_default_is_a_short_program() {
        let p = Profile::docker_default(&capabilities::effective(&[], &[]).unwrap());
        let n = program(&p).unwrap().len();
        // seccompiler's linear program for the same profile had 1,608 (plus 10 for clone3).
        assert!(n < 200, "{n} instructions");
    }
}
