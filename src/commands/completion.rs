//! `kubectl mesh-upgrade completion <shell>` and the kubectl plugin
//! completion helper.
//!
//! Two ways in:
//! - Direct: `completion bash|zsh|fish|powershell` prints a clap-generated
//!   script that completes `kubectl-mesh_upgrade` (the binary's own name).
//! - Through kubectl (1.26+): `kubectl mesh-upgrade <TAB>` makes kubectl run
//!   an executable named `kubectl_complete-mesh_upgrade` from PATH with the
//!   words typed so far, and read candidates one per line followed by a
//!   `:<directive>` line (cobra's protocol). `completion kubectl` prints that
//!   helper: a two-line script calling this binary's hidden `__complete`,
//!   answered by [`complete`] from the same clap definition as the parser.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, CompletionTarget};
use crate::error::ExitCode;
use crate::output::Output;

/// The binary's file name: what a shell sees when it is run directly.
pub const BINARY_NAME: &str = "kubectl-mesh_upgrade";

/// The name kubectl looks for on PATH to complete this plugin's arguments.
pub const KUBECTL_HELPER_NAME: &str = "kubectl_complete-mesh_upgrade";

/// cobra's `ShellCompDirectiveNoFileComp`: do not fall back to file names.
const NO_FILE_COMPLETION: u8 = 4;
/// cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
const DEFAULT_DIRECTIVE: u8 = 0;

/// Print the completion script.
pub fn run(args: &CompletionArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let script = match args.shell.shell() {
        Some(shell) => {
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, BINARY_NAME, &mut script);
            String::from_utf8_lossy(&script).into_owned()
        }
        None => kubectl_helper_script(),
    };
    output.print_raw(&script, false)?;
    Ok(ExitCode::Success)
}

/// The `kubectl_complete-mesh_upgrade` helper script.
pub fn kubectl_helper_script() -> String {
    format!(
        "#!/bin/sh\n# Install on PATH as {KUBECTL_HELPER_NAME} (executable) so that\n# `kubectl mesh-upgrade <TAB>` completes.\nexec {BINARY_NAME} __complete \"$@\"\n"
    )
}

/// Answer `__complete <words...>` (the last word is the one being typed)
/// and print cobra's format.
pub fn run_hidden_complete(words: &[String], output: &Output) -> ExitCode {
    let (candidates, directive) = complete(words);
    let mut text = String::new();
    for candidate in candidates {
        text.push_str(&candidate);
        text.push('\n');
    }
    text.push_str(&format!(":{directive}\n"));
    let _ = output.print_raw(&text, false);
    ExitCode::Success
}

/// Completion candidates for the words typed after `kubectl mesh-upgrade`,
/// the last being the partial word, and cobra's directive.
pub fn complete(words: &[String]) -> (Vec<String>, u8) {
    let mut root = Cli::command();
    root.build();
    let (typed, partial) = match words.split_last() {
        Some((partial, typed)) => (typed, partial.as_str()),
        None => (&[][..], ""),
    };

    // Walk the typed words to find the verb and whether the last one is a
    // flag still waiting for its value.
    let mut current = &root;
    let mut pending_value: Option<&clap::Arg> = None;
    for word in typed {
        if pending_value.take().is_some() {
            continue;
        }
        if let Some(flag) = word.strip_prefix('-') {
            if !word.contains('=') {
                pending_value = find_flag(current, flag).filter(|arg| needs_value(arg));
            }
            continue;
        }
        if let Some(sub) = current.find_subcommand(word) {
            current = sub;
        }
    }

    if let Some(arg) = pending_value {
        let values = possible_values(arg);
        let directive = if arg.get_value_hint() == clap::ValueHint::FilePath
            || arg.get_long() == Some("kubeconfig")
        {
            DEFAULT_DIRECTIVE
        } else {
            NO_FILE_COMPLETION
        };
        return (filter_prefix(values, partial), directive);
    }

    if partial.starts_with('-') {
        let mut flags = Vec::new();
        for arg in current.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                flags.push(format!("--{long}"));
            }
            if !partial.starts_with("--")
                && let Some(short) = arg.get_short()
            {
                flags.push(format!("-{short}"));
            }
        }
        return (filter_prefix(flags, partial), NO_FILE_COMPLETION);
    }

    if current.has_subcommands() {
        let verbs = current
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .collect();
        return (filter_prefix(verbs, partial), NO_FILE_COMPLETION);
    }

    let positional_values = current
        .get_positionals()
        .flat_map(possible_values)
        .collect();
    (
        filter_prefix(positional_values, partial),
        NO_FILE_COMPLETION,
    )
}

fn find_flag<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a clap::Arg> {
    match flag.strip_prefix('-') {
        Some(long) => command.get_arguments().find(|a| {
            a.get_long() == Some(long)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long))
        }),
        // `-n` waits for a value; `-nshop` already has it.
        None if flag.chars().count() == 1 => {
            let short = flag.chars().next()?;
            command
                .get_arguments()
                .find(|a| a.get_short() == Some(short))
        }
        None => None,
    }
}

/// Whether the flag consumes the next word (an optional value, like `-v`'s,
/// does not).
fn needs_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() > 0) && arg.get_action().takes_values()
}

fn possible_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect()
}

fn filter_prefix(candidates: Vec<String>, prefix: &str) -> Vec<String> {
    candidates
        .into_iter()
        .filter(|c| c.starts_with(prefix))
        .collect()
}

impl CompletionTarget {
    /// The clap shell, or `None` for the kubectl helper.
    fn shell(self) -> Option<clap_complete::Shell> {
        match self {
            CompletionTarget::Bash => Some(clap_complete::Shell::Bash),
            CompletionTarget::Zsh => Some(clap_complete::Shell::Zsh),
            CompletionTarget::Fish => Some(clap_complete::Shell::Fish),
            CompletionTarget::Powershell => Some(clap_complete::Shell::PowerShell),
            CompletionTarget::Kubectl => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut words: Vec<String> = text.split(' ').map(String::from).collect();
        if text.is_empty() {
            words = vec![String::new()];
        }
        words
    }

    #[test]
    fn an_empty_word_completes_the_verbs() {
        let (candidates, directive) = complete(&words(""));
        assert_eq!(
            candidates,
            [
                "status",
                "restart-sidecars",
                "relabel",
                "gateway-switch",
                "version",
                "completion"
            ]
        );
        assert_eq!(directive, NO_FILE_COMPLETION);
        assert_eq!(complete(&words("re")).0, ["restart-sidecars", "relabel"]);
    }

    #[test]
    fn flags_of_the_verb_include_the_global_ones() {
        let (candidates, _) = complete(&words("status --ex"));
        assert_eq!(candidates, ["--exit-code"]);
        let (candidates, _) = complete(&words("status --all-n"));
        assert_eq!(candidates, ["--all-namespaces"]);
    }

    #[test]
    fn the_output_flag_completes_its_formats() {
        let (candidates, directive) = complete(&words("status -o "));
        assert_eq!(candidates, ["table", "wide", "json", "yaml"]);
        assert_eq!(directive, NO_FILE_COMPLETION);
        assert_eq!(complete(&words("status -n shop --output j")).0, ["json"]);
    }

    #[test]
    fn the_kubeconfig_flag_lets_the_shell_complete_files() {
        let (_, directive) = complete(&words("status --kubeconfig "));
        assert_eq!(directive, DEFAULT_DIRECTIVE);
    }

    #[test]
    fn completion_completes_its_shells() {
        assert_eq!(
            complete(&words("completion ")).0,
            ["bash", "zsh", "fish", "powershell", "kubectl"]
        );
    }

    #[test]
    fn the_kubectl_helper_calls_the_binary() {
        let script = kubectl_helper_script();
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.ends_with("exec kubectl-mesh_upgrade __complete \"$@\"\n"));
    }
}
