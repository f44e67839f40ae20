//! The step between a plan and its first write, shared by every writing verb
//! (`restart-sidecars`, `relabel`, `gateway-switch`).
//!
//! ```text
//! plan ─► rendered on stdout (or -o json) ─► decide() ─► Apply / Rehearse / Stop
//! ```
//!
//! The rules are the same for every verb, so they live here once:
//! - `--dry-run` (client): the plan is the whole answer; nothing is written.
//! - `--dry-run=server`: the writes go out with `dryRun=All`, so no prompt.
//! - an empty plan: nothing to do, no prompt.
//! - `--yes`: go ahead without asking.
//! - stdin is a terminal: ask (the output object's prompt), default "no".
//! - otherwise: refuse with a sentence that says how to proceed.
//!
//! The decision itself ([`decide`]) is pure: the terminal check and the
//! prompt are passed in, so every branch is unit-tested. It takes a
//! [`WriteIntent`], a plain value the verbs build from their flags, so
//! nothing here depends on how the command line is parsed.

use crate::error::Error;
use crate::output::Output;

/// Whether and how the writes of a plan are rehearsed instead of made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DryRunMode {
    /// Write for real.
    #[default]
    None,
    /// Show the plan and send no write at all.
    Client,
    /// Send the writes with `dryRun=All`: checked by the server, not stored.
    Server,
}

/// What the user asked for about writing: rehearse or not, ask or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteIntent {
    pub dry_run: DryRunMode,
    /// Go ahead without asking (`--yes`).
    pub yes: bool,
}

/// What the verb does after showing its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Make the writes for real.
    Apply,
    /// Send the writes with `dryRun=All`: the server validates, stores nothing.
    RehearseOnServer,
    /// Client dry run: the plan was the answer; send no write at all.
    PlanOnly,
    /// The plan is empty: nothing to write.
    NothingToDo,
}

impl Decision {
    /// Whether any request that changes the cluster may be sent.
    pub fn writes(self) -> bool {
        matches!(self, Decision::Apply)
    }
}

/// Decide whether to go ahead with a plan of `changes` changes, described in
/// the prompt as `question` (e.g. "Restart 4 workloads in 2 namespaces?").
///
/// `stdin_is_terminal` and `ask` are injected so tests need no terminal;
/// [`decide_interactively`] passes the real ones.
pub fn decide(
    write: &WriteIntent,
    changes: usize,
    question: &str,
    stdin_is_terminal: bool,
    ask: impl FnOnce(&str) -> anyhow::Result<bool>,
) -> anyhow::Result<Decision> {
    if changes == 0 {
        return Ok(Decision::NothingToDo);
    }
    match write.dry_run {
        DryRunMode::Client => return Ok(Decision::PlanOnly),
        DryRunMode::Server => return Ok(Decision::RehearseOnServer),
        DryRunMode::None => {}
    }
    if write.yes {
        return Ok(Decision::Apply);
    }
    if !stdin_is_terminal {
        return Err(Error::Refused(
            "stdin is not a terminal, so there is no one to confirm the plan: pass --yes to apply it, or --dry-run to only show it"
                .to_string(),
        )
        .into());
    }
    if ask(question)? {
        Ok(Decision::Apply)
    } else {
        Err(Error::Refused("not confirmed: nothing was changed".to_string()).into())
    }
}

/// [`decide`] with the output's terminal check and prompt
/// ([`Output::stdin_is_terminal`], [`Output::ask`]). Takes anything a
/// [`WriteIntent`] is made from (the conversion lives in `commands`).
pub fn decide_interactively(
    write: impl Into<WriteIntent>,
    changes: usize,
    question: &str,
    output: &Output,
) -> anyhow::Result<Decision> {
    decide(
        &write.into(),
        changes,
        question,
        output.stdin_is_terminal(),
        |question| output.ask(question),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ExitCode, exit_code_of};

    fn write(dry_run: DryRunMode, yes: bool) -> WriteIntent {
        WriteIntent { dry_run, yes }
    }

    fn never_asked(_: &str) -> anyhow::Result<bool> {
        panic!("the prompt must not be shown here")
    }

    #[test]
    fn an_empty_plan_asks_nothing_and_writes_nothing() {
        let d = decide(&write(DryRunMode::None, false), 0, "?", false, never_asked).unwrap();
        assert_eq!(d, Decision::NothingToDo);
        assert!(!d.writes());
    }

    #[test]
    fn client_dry_run_never_writes_even_with_yes() {
        let d = decide(&write(DryRunMode::Client, true), 3, "?", true, never_asked).unwrap();
        assert_eq!(d, Decision::PlanOnly);
        assert!(!d.writes());
    }

    #[test]
    fn server_dry_run_rehearses_without_a_prompt() {
        let d = decide(
            &write(DryRunMode::Server, false),
            3,
            "?",
            false,
            never_asked,
        )
        .unwrap();
        assert_eq!(d, Decision::RehearseOnServer);
        assert!(!d.writes());
    }

    #[test]
    fn yes_applies_without_a_terminal() {
        let d = decide(&write(DryRunMode::None, true), 3, "?", false, never_asked).unwrap();
        assert_eq!(d, Decision::Apply);
    }

    #[test]
    fn without_a_terminal_and_without_yes_it_refuses_with_exit_code_5() {
        let err = decide(&write(DryRunMode::None, false), 3, "?", false, never_asked).unwrap_err();
        assert_eq!(exit_code_of(&err), ExitCode::Refused);
        assert!(err.to_string().contains("pass --yes"), "{err}");
    }

    #[test]
    fn at_a_terminal_the_answer_decides() {
        let asked = |q: &str| {
            assert_eq!(q, "Restart 3 workloads?");
            Ok(true)
        };
        let d = decide(
            &write(DryRunMode::None, false),
            3,
            "Restart 3 workloads?",
            true,
            asked,
        );
        assert_eq!(d.unwrap(), Decision::Apply);
        let err = decide(&write(DryRunMode::None, false), 3, "?", true, |_| Ok(false)).unwrap_err();
        assert_eq!(exit_code_of(&err), ExitCode::Refused);
    }
}
